package telemetry

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/outbox/consumer"
	"github.com/cairn-dev/cairn/outbox/lake"
	"github.com/cairn-dev/cairn/outbox/projection"
	"github.com/cairn-dev/cairn/outbox/relay"
	"github.com/cairn-dev/cairn/outbox/saga"
)

// Sample is the part of a snapshot that costs queries: the outbox backlog
// (a count over the rows the relay has not published), each consumer's
// JetStream figures, the dead letters per consumer, the open saga
// instances and due timers, and the published events the lake has not
// taken yet. It is gathered in
// the background and shared by every reader, so a scrape never waits for a
// count over a large backlog.
type Sample struct {
	// At is when the gathering started; /metrics exports it, so a reader
	// can tell two samples apart.
	At          time.Time
	Relay       relay.Metrics
	RelayErr    error
	Backlogs    []consumer.Backlog
	BacklogErr  error
	DeadLetters []consumer.DeadLetterStat
	DeadErr     error
	// Sagas are the saga figures (read when there are sagas).
	Sagas    saga.Figures
	SagasErr error
	// Unmoved counts the published events not in the lake yet (read
	// with the lake on).
	Unmoved    int64
	UnmovedErr error
	// Projections are the projections' versions (read when there are
	// projections), as GET /api/v1/admin/projections shows them.
	Projections    []projection.Status
	ProjectionsErr error
	// Took is how long gathering it took.
	Took time.Duration
}

// sampler refreshes the Sample on demand. A reader that finds it older
// than minAge (or ten times what the last refresh took, if that is more)
// starts one refresh (never two at once) and waits for it at most wait,
// then takes what there is: under a small backlog the answer is fresh;
// under a large one the count finishes in the background and the next
// reader gets it. So of two scrapes far enough apart the second sees the
// state of the system after the first began, no scrape waits longer than
// wait, and counting costs the database at most a tenth of one
// connection's time, however often it is scraped.
type sampler struct {
	relay     *relay.Relay
	consumers *consumer.Runtime
	sagas     *saga.Registry
	db        *pgxpool.Pool
	lake      *lake.Mover
	proj      *projection.Runtime
	minAge    time.Duration
	wait      time.Duration
	timeout   time.Duration
	log       *slog.Logger

	mu      sync.Mutex
	last    Sample
	running chan struct{} // closed when the refresh in flight ends; nil when none
}

// get returns the latest sample, refreshing it first if it is stale.
func (s *sampler) get(ctx context.Context) Sample {
	s.mu.Lock()
	// A refresh that takes long (a count over a million-row backlog takes
	// about a second) runs at most a tenth of the time.
	if time.Since(s.last.At) < max(s.minAge, 10*s.last.Took) {
		defer s.mu.Unlock()
		return s.last
	}
	done := s.running
	if done == nil {
		done = make(chan struct{})
		s.running = done
		go s.refresh(done)
	}
	s.mu.Unlock()
	t := time.NewTimer(s.wait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	case <-ctx.Done():
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// refresh gathers a sample with a context of its own: a scrape that gives
// up does not waste the work.
func (s *sampler) refresh(done chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	smp := Sample{At: time.Now()}
	if s.relay != nil {
		smp.Relay, smp.RelayErr = s.relay.Metrics(ctx)
	}
	if s.consumers != nil {
		smp.Backlogs, smp.BacklogErr = s.consumers.Backlogs(ctx)
		smp.DeadLetters, smp.DeadErr = s.consumers.DeadLetterStats(ctx)
	}
	if s.sagas != nil && s.db != nil {
		smp.Sagas, smp.SagasErr = s.sagas.Figures(ctx, s.db)
	}
	if s.lake != nil {
		smp.Unmoved, smp.UnmovedErr = s.lake.Unmoved(ctx)
	}
	if s.proj != nil {
		smp.Projections, smp.ProjectionsErr = s.proj.Status(ctx)
	}
	smp.Took = time.Since(smp.At)
	for _, err := range []error{smp.RelayErr, smp.BacklogErr, smp.DeadErr, smp.SagasErr, smp.UnmovedErr, smp.ProjectionsErr} {
		if err != nil {
			s.log.Warn("metrics: a figure could not be read; its series are left out of this sample", "err", err)
		}
	}
	s.mu.Lock()
	s.last, s.running = smp, nil
	s.mu.Unlock()
	close(done)
}
