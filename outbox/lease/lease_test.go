package lease_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/outbox/lease"
	"github.com/cairn-dev/cairn/testenv"
)

const ttl = time.Second

func opts(holder string) lease.Options {
	return lease.Options{TTL: ttl, StandbyEvery: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, Holder: holder}
}

// tenure records when each holder's lead function saw itself in office, on
// one clock, so overlaps between holders can be found.
type tenure struct {
	mu    sync.Mutex
	terms []span
}

type span struct {
	holder     string
	token      int64
	start, end time.Time
}

// lead holds office until its context ends, then records the span. The end
// is taken when the context is cancelled, which is when a holder must stop.
func (tn *tenure) lead(holder string) func(context.Context, *lease.Term) error {
	return func(ctx context.Context, t *lease.Term) error {
		s := span{holder: holder, token: t.Token, start: time.Now()}
		<-ctx.Done()
		s.end = time.Now()
		tn.mu.Lock()
		tn.terms = append(tn.terms, s)
		tn.mu.Unlock()
		return nil
	}
}

func (tn *tenure) noOverlap(t *testing.T) {
	t.Helper()
	tn.mu.Lock()
	defer tn.mu.Unlock()
	for i, a := range tn.terms {
		for _, b := range tn.terms[i+1:] {
			if a.start.Before(b.end) && b.start.Before(a.end) {
				t.Fatalf("two holders at once: %+v and %+v", a, b)
			}
		}
	}
}

func run(t *testing.T, l *lease.Lease, lead func(context.Context, *lease.Term) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = l.Run(ctx, lead) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < timeout {
		if cond() {
			return time.Since(start)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
	return 0
}

// One holder at a time; a graceful stop releases the lease, so the standby
// takes over within a poll, with a higher token.
func TestOneHolderAndHandoverOnStop(t *testing.T) {
	db := testenv.MustDB(t)
	var tn tenure
	a := lease.New(db.Pool, "test", opts("a"))
	b := lease.New(db.Pool, "test", opts("b"))
	stopA := run(t, a, tn.lead("a"))
	waitFor(t, 5*time.Second, "a to hold", func() bool { return a.Status().State == lease.Holding })
	run(t, b, tn.lead("b"))
	waitFor(t, 5*time.Second, "b to stand by", func() bool { return b.Status().State == lease.Standby })
	time.Sleep(3 * ttl) // a renews; b must never win meanwhile
	if st := b.Status(); st.State != lease.Standby || st.Holder != "a" {
		t.Fatalf("b: %+v, want standby behind a", st)
	}
	tokenA := a.Status().Token
	stopA()
	took := waitFor(t, 5*time.Second, "b to take over", func() bool { return b.Status().State == lease.Holding })
	if got := b.Status().Token; got != tokenA+1 {
		t.Fatalf("b's token %d, want %d", got, tokenA+1)
	}
	t.Logf("handover after a graceful stop took %s", took)
	if took > ttl {
		t.Fatalf("a released the lease but b waited %s (the TTL is %s): the release did not happen", took, ttl)
	}
	tn.noOverlap(t)
}

// A holder that cannot reach the database stops acting when its term runs
// out by its own clock, before the standby starts; the standby takes over
// after the TTL.
func TestUnrenewableHolderStopsBeforeStandbyStarts(t *testing.T) {
	db := testenv.MustDB(t)
	// a's own pool, which we close under it: its renewals then fail.
	poolA, err := pgxpool.New(context.Background(), db.URL)
	if err != nil {
		t.Fatal(err)
	}
	var tn tenure
	var aEnded atomic.Int64
	a := lease.New(poolA, "test", opts("a"))
	run(t, a, func(ctx context.Context, tm *lease.Term) error {
		err := tn.lead("a")(ctx, tm)
		if !tm.Valid() {
			aEnded.Add(1)
		}
		return err
	})
	waitFor(t, 5*time.Second, "a to hold", func() bool { return a.Status().State == lease.Holding })
	b := lease.New(db.Pool, "test", opts("b"))
	run(t, b, tn.lead("b"))
	waitFor(t, 5*time.Second, "b to stand by", func() bool { return b.Status().State == lease.Standby })
	poolA.Close()
	took := waitFor(t, 10*time.Second, "b to take over", func() bool { return b.Status().State == lease.Holding })
	t.Logf("standby took over %s after the holder lost the database", took)
	if took < ttl/2 {
		t.Fatalf("b took over after %s, before a's term could have run out (TTL %s)", took, ttl)
	}
	if aEnded.Load() == 0 {
		t.Fatal("a's lead function returned while its term was still valid, or never")
	}
	tn.noOverlap(t)
}

// A holder whose renewals fail stops starting outside effects a third of
// the TTL before its term ends, while the term itself still holds: an
// email started then has that long to finish before a standby can start.
func TestNoEffectStartsInTheLastThirdOfATerm(t *testing.T) {
	db := testenv.MustDB(t)
	poolA, err := pgxpool.New(context.Background(), db.URL)
	if err != nil {
		t.Fatal(err)
	}
	var refusedWhileValid atomic.Int64
	a := lease.New(poolA, "test", opts("a"))
	run(t, a, func(ctx context.Context, tm *lease.Term) error {
		for ctx.Err() == nil && tm.Valid() {
			if tm.CheckBeforeEffect() != nil && tm.Valid() {
				refusedWhileValid.Add(1)
			}
			time.Sleep(5 * time.Millisecond)
		}
		return nil
	})
	waitFor(t, 5*time.Second, "a to hold", func() bool { return a.Status().State == lease.Holding })
	poolA.Close()
	waitFor(t, 5*time.Second, "a's term to end", func() bool { return a.Status().State != lease.Holding })
	if refusedWhileValid.Load() == 0 {
		t.Fatal("effects were allowed until the term ended")
	}
}

// A renewal that finds another token (an operator or a bug moved the lease)
// ends the term at once.
func TestRenewalFindsLeaseLost(t *testing.T) {
	db := testenv.MustDB(t)
	a := lease.New(db.Pool, "test", opts("a"))
	ended := make(chan error, 1)
	run(t, a, func(ctx context.Context, tm *lease.Term) error {
		<-ctx.Done()
		select {
		case ended <- context.Cause(ctx):
		default:
		}
		return nil
	})
	waitFor(t, 5*time.Second, "a to hold", func() bool { return a.Status().State == lease.Holding })
	if _, err := db.Pool.Exec(context.Background(), `UPDATE outbox.leases SET token = token + 1, holder = 'intruder', expires_at = now() + interval '1 hour'`); err != nil {
		t.Fatal(err)
	}
	select {
	case cause := <-ended:
		if !errors.Is(cause, lease.ErrLost) {
			t.Fatalf("term ended with %v, want ErrLost", cause)
		}
	case <-time.After(3 * ttl):
		t.Fatal("a kept acting after its lease was taken")
	}
	waitFor(t, 5*time.Second, "a to stop holding", func() bool { return a.Status().State != lease.Holding })
}

// A lead function that fails gives the lease up at once, so a standby with
// a healthy path takes over without waiting for the TTL.
func TestFailingLeaderHandsOver(t *testing.T) {
	db := testenv.MustDB(t)
	var errs atomic.Int64
	a := lease.New(db.Pool, "test", lease.Options{TTL: 10 * time.Second, StandbyEvery: 50 * time.Millisecond,
		MaxBackoff: 5 * time.Second, Holder: "a", OnError: func(error) { errs.Add(1) }})
	var aLed atomic.Int64
	run(t, a, func(ctx context.Context, tm *lease.Term) error {
		aLed.Add(1)
		return errors.New("cannot reach NATS")
	})
	waitFor(t, 5*time.Second, "a to lead once", func() bool { return aLed.Load() > 0 })
	b := lease.New(db.Pool, "test", lease.Options{TTL: 10 * time.Second, StandbyEvery: 50 * time.Millisecond, Holder: "b"})
	var tn tenure
	took := waitFor(t, 5*time.Second, "b to hold", func() bool {
		if b.Status().State == lease.Stopped {
			run(t, b, tn.lead("b"))
		}
		return b.Status().State == lease.Holding
	})
	if took > 5*time.Second {
		t.Fatalf("b waited %s", took)
	}
	if errs.Load() == 0 {
		t.Fatal("a's error was not reported")
	}
}
