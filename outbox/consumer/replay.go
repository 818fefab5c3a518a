package consumer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/lease"
	"github.com/cairn-dev/cairn/outbox/replay"
)

// Replays (outbox/replay) run on the replica that holds their consumer's
// lease, inside its term: a rebuild stops live consumption (every lane
// ends), resets the consumer's state, runs the handler over the lake, sets
// the durable to deliver from the stream sequence after the last replayed
// event, and consumption goes on; a dry run runs beside live consumption.
// Their writes are fenced by the term, like the inbox's. A run a crash or
// a takeover interrupted is still running in replay.runs, and the next
// holder starts it again (a rebuild resets again). A consumer that starts
// in the past is seeded the same way when its durable does not exist yet.

// maxRebuildStarts is how often a rebuild is started before it is given up
// as failed (and the consumer stays paused for an operator).
const maxRebuildStarts = 5

// errRebuildWanted ends live consumption for a rebuild.
var errRebuildWanted = errors.New("consumer: a rebuild is wanted")

// wantReplay records the running run of the consumer (nil: none).
func (st *state) wantReplay(run *replay.Run) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.replay = run
}

func (st *state) wantedReplay() *replay.Run {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.replay
}

// readReplays reads the running runs, so that the holder of their
// consumer starts them.
func (r *Runtime) readReplays(ctx context.Context) error {
	running, err := replay.Running(ctx, r.opt.LeasePool)
	if err != nil {
		return err
	}
	for name, st := range r.states {
		if run, ok := running[name]; ok {
			st.wantReplay(&run)
		} else {
			st.wantReplay(nil)
		}
	}
	return nil
}

// ReplayRequested tells this replica's runtime that a run of consumer was
// recorded, so that its holder here starts it at once rather than at its
// next read of replay.runs.
func (r *Runtime) ReplayRequested(consumer string) {
	if _, ok := r.states[consumer]; !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := r.readReplays(ctx); err != nil {
		r.log.Warn("cannot read the replays", "err", err)
	}
}

// termFence is a replay's fence: its transaction commits only while the
// term's token still holds the lease.
func termFence(t *lease.Term) func(ctx context.Context, tx pgx.Tx) error {
	return func(ctx context.Context, tx pgx.Tx) error {
		var held bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM outbox.leases WHERE name = $1 AND token = $2)`, t.Name, t.Token).Scan(&held); err != nil {
			return fmt.Errorf("consumer: check the lease: %w", err)
		}
		if !held || !t.Valid() {
			return errFenced
		}
		return nil
	}
}

// replayEnv is the environment of a run of this term, saving its progress
// at most twice a second.
func (r *Runtime) replayEnv(t *lease.Term, runID string) replay.Env {
	var last time.Time
	return replay.Env{DB: r.db, Fence: termFence(t), Log: r.log, Progress: func(p replay.Progress) {
		if runID == "" || time.Since(last) < 500*time.Millisecond {
			return
		}
		last = time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := replay.SaveProgress(ctx, r.db, runID, p); err != nil {
			r.log.Warn("cannot record a replay's progress", "run", runID, "err", err)
		}
	}}
}

// rebuild runs a rebuild of s in this term; live consumption has stopped.
// It returns an error that ends the term when the rebuild must be started
// again (by whoever holds the consumer next).
func (r *Runtime) rebuild(ctx context.Context, t *lease.Term, s outbox.Subscription, st *state, id string) error {
	log := r.log.With("consumer", s.Consumer, "replay", id)
	run, ok, err := replay.Start(ctx, r.db, id)
	if err != nil || !ok {
		st.wantReplay(nil)
		return err
	}
	if run.Attempts > maxRebuildStarts {
		why := fmt.Sprintf("gave up after %d starts; last error: %s", run.Attempts-1, run.Error)
		return r.giveUpRebuild(ctx, s, st, run, why)
	}
	if err := lease.SetNote(ctx, r.opt.LeasePool, t, notePaused+"rebuilding (replay "+id+")"); err != nil && ctx.Err() == nil {
		log.Warn("cannot record the rebuild in the lease", "err", err)
	}
	log.Info("rebuild started", "attempt", run.Attempts)
	began := time.Now()
	ho, err := replay.Rebuild(ctx, r.replayEnv(t, id), s, run.Range())
	if err == nil {
		err = r.resumeAt(ctx, s, ho.StartSeq)
	}
	if err != nil {
		if ctx.Err() != nil || errors.Is(err, errFenced) {
			return nil
		}
		nctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = replay.NoteError(nctx, r.db, id, err.Error())
		cancel()
		return fmt.Errorf("consumer %s: rebuild %s: %w", s.Consumer, id, err)
	}
	if err := replay.Finish(ctx, r.db, id, replay.StatusDone, ho.Progress, "", &ho); err != nil {
		return err
	}
	st.wantReplay(nil)
	log.Info("rebuild done; consuming live", "events", ho.Processed, "parked", ho.Failed, "position", ho.Position,
		"stream", ho.Stream, "last_seq", ho.LastSeq, "start_seq", ho.StartSeq, "took", time.Since(began).Round(time.Millisecond))
	return nil
}

// giveUpRebuild ends a rebuild that failed too often: the run fails, and
// the consumer is paused as by an operator, since its state is half
// rebuilt; a new rebuild (or a resume, if the operator so decides) ends
// the pause.
func (r *Runtime) giveUpRebuild(ctx context.Context, s outbox.Subscription, st *state, run replay.Run, why string) error {
	if err := replay.Finish(ctx, r.db, run.ID, replay.StatusFailed, replay.Progress{}, why, nil); err != nil {
		return err
	}
	st.wantReplay(nil)
	return r.Pause(ctx, s.Consumer, "rebuild "+run.ID+" failed ("+why+"): its state is half rebuilt; start a new rebuild")
}

// resumeAt makes the durable deliver from seq on: reset to that sequence
// (NATS 2.14 and later), or deleted and made again starting there. This
// term holds the consumer, so nobody else uses the durable meanwhile.
func (r *Runtime) resumeAt(ctx context.Context, s outbox.Subscription, seq uint64) error {
	stream := streamOf(s)
	_, err := r.js.Consumer(ctx, stream, s.Consumer)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		_, err = r.js.CreateConsumer(ctx, stream, r.durableConfig(s, seq))
		return wrapDurable(s, err)
	}
	if err != nil {
		return wrapDurable(s, err)
	}
	if !r.opt.noReset && r.canReset() {
		_, err := r.js.ResetConsumerToSequence(ctx, stream, s.Consumer, seq)
		if err == nil || !errors.Is(err, jetstream.ErrConsumerInvalidReset) {
			return wrapDurable(s, err)
		}
	}
	if err := r.js.DeleteConsumer(ctx, stream, s.Consumer); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return wrapDurable(s, err)
	}
	_, err = r.js.CreateConsumer(ctx, stream, r.durableConfig(s, seq))
	return wrapDurable(s, err)
}

func wrapDurable(s outbox.Subscription, err error) error {
	if err != nil {
		return fmt.Errorf("consumer %s: set the durable to resume after the replay: %w", s.Consumer, err)
	}
	return nil
}

// seed seeds a new consumer that starts in the past from the lake and
// returns the stream sequence its durable is to start at.
func (r *Runtime) seed(ctx context.Context, t *lease.Term, s outbox.Subscription) (uint64, error) {
	run, err := replay.BeginSeed(ctx, r.db, s.Consumer, s.Start.String())
	if err != nil {
		return 0, fmt.Errorf("consumer %s: seed: %w", s.Consumer, err)
	}
	if _, _, err := replay.Start(ctx, r.db, run.ID); err != nil {
		return 0, err
	}
	log := r.log.With("consumer", s.Consumer, "replay", run.ID)
	log.Info("seeding a new consumer from the lake", "from", s.Start.String())
	began := time.Now()
	ho, err := replay.Seed(ctx, r.replayEnv(t, run.ID), s)
	if err != nil {
		return 0, fmt.Errorf("consumer %s: seed from the lake: %w", s.Consumer, err)
	}
	if err := replay.Finish(ctx, r.db, run.ID, replay.StatusDone, ho.Progress, "", &ho); err != nil {
		return 0, err
	}
	log.Info("seeded; consuming live", "events", ho.Processed, "position", ho.Position, "stream", ho.Stream,
		"last_seq", ho.LastSeq, "start_seq", ho.StartSeq, "took", time.Since(began).Round(time.Millisecond))
	return ho.StartSeq, nil
}

// dryRun runs a dry run beside live consumption, in this term.
func (r *Runtime) dryRun(ctx context.Context, t *lease.Term, s outbox.Subscription, st *state, id string) {
	log := r.log.With("consumer", s.Consumer, "replay", id)
	run, ok, err := replay.Start(ctx, r.db, id)
	if err != nil || !ok {
		if err != nil && ctx.Err() == nil {
			log.Warn("cannot start a dry run", "err", err)
		}
		return
	}
	log.Info("dry run started", "attempt", run.Attempts)
	p, err := replay.DryRun(ctx, r.replayEnv(t, id), s, run.Range(), func(ctx context.Context, effects []replay.Effect) error {
		return replay.AddEffects(ctx, r.db, id, effects)
	})
	if ctx.Err() != nil {
		return // the next holder starts it again
	}
	status, why := replay.StatusDone, ""
	if err != nil {
		status, why = replay.StatusFailed, err.Error()
	}
	if err := replay.Finish(ctx, r.db, id, status, p, why, nil); err != nil {
		log.Warn("cannot record the end of a dry run", "err", err)
		return
	}
	st.wantReplay(nil)
	log.Info("dry run "+status, "events", p.Processed, "effects", p.Effects, "failed", p.Failed, "err", why)
}
