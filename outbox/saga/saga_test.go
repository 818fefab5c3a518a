package saga_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/outbox/saga"
	"github.com/cairn-dev/cairn/testenv"
)

// A timer fires at the version it was set at: its handler runs, in a step
// recorded with when it was due.
func TestTimerFires(t *testing.T) {
	f := newFixture(t, nil, nil)
	f.start("t1", true)
	f.waitFor("the timer", func() bool { return f.view("t1").State == "c" })
	v := f.view("t1")
	last := v.History[len(v.History)-1]
	if v.Status != saga.Completed || v.Version != 2 || last.Cause.Type != "timer:go" || last.DueAt == nil || last.At.Before(*last.DueAt) || len(v.Timers) != 0 {
		t.Errorf("after the timer: %+v", v)
	}
	t.Logf("fired %s after it was due", last.At.Sub(*last.DueAt))
}

// A timer that fires after a later transition is recorded as stale and
// does nothing: poked moved the instance on without cancelling it.
func TestStaleTimerIsRecordedAndDoesNothing(t *testing.T) {
	f := newFixture(t, nil, nil)
	f.toy.timerFor = 5 * time.Second // the poke comes first, however loaded the machine
	f.start("t2", true)
	f.poke("t2", false)
	f.waitFor("the poke", func() bool { return f.view("t2").State == "b" })
	if v := f.view("t2"); len(v.Timers) != 1 || !v.Timers[0].Stale {
		t.Errorf("pending timers %+v, want one stale", v.Timers)
	}
	f.waitFor("the timer", func() bool { return f.Count(`SELECT count(*) FROM saga.timers`) == 0 })
	v := f.view("t2")
	last := v.History[len(v.History)-1]
	if f.toy.goFired.Load() != 0 || v.State != "b" || v.Version != 2 || last.Kind != "stale" || last.Cause.Type != "timer:go" || !strings.Contains(last.Note, "version 1") {
		t.Errorf("the stale timer ran (%d) or was not recorded: %+v", f.toy.goFired.Load(), v)
	}
}

// An event a state has no handler for is recorded as stale and does
// nothing; the event that moved it is traced to its cause.
func TestStaleEventIsRecorded(t *testing.T) {
	f := newFixture(t, nil, nil)
	f.start("t3", false)
	f.poke("t3", false)
	f.waitFor("the first poke", func() bool { return f.view("t3").State == "b" })
	f.poke("t3", false)
	f.Drain()
	v := f.view("t3")
	kinds := []string{}
	for _, h := range v.History {
		kinds = append(kinds, h.Kind+":"+h.From+">"+h.To)
	}
	if got := strings.Join(kinds, " "); got != "start:>a transition:a>b stale:b>b" || v.Version != 2 || string(v.Data) != `{"fired":0,"pokes":1}` {
		t.Errorf("history %s, version %d, data %s", got, v.Version, v.Data)
	}
	if n := len(f.Stream("EVENTS").OfType("sagatest.answered.v1")); n != 1 {
		t.Errorf("%d answers, want 1", n)
	}
}

// A step is all or nothing: when the consumer's transaction fails after
// the step's writes (here the inbox insert, made to fail once), none of
// them stays: no history row, no transition, no event; the redelivery
// does the step once.
func TestStepIsAllOrNothing(t *testing.T) {
	f := newFixture(t, nil, nil)
	ctx := context.Background()
	if _, err := f.DB.Pool.Exec(ctx, `
		CREATE SEQUENCE public.fail_once;
		CREATE FUNCTION public.fail_once() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF NEW.consumer = 'sagatest_flow_poked' AND nextval('public.fail_once') = 1 THEN
				RAISE EXCEPTION 'injected failure after the step';
			END IF;
			RETURN NEW;
		END $$;
		CREATE TRIGGER fail_once BEFORE INSERT ON inbox.processed FOR EACH ROW EXECUTE FUNCTION public.fail_once();`); err != nil {
		t.Fatal(err)
	}
	f.start("t4", false)
	f.poke("t4", false)
	f.Drain()
	v := f.view("t4")
	if !strings.Contains(f.Logs(), "injected failure after the step") {
		t.Fatal("the failure was never injected; the test proves nothing")
	}
	if len(v.History) != 2 || v.State != "b" || string(v.Data) != `{"fired":0,"pokes":1}` {
		t.Errorf("after a failed and a repeated step: %+v", v)
	}
	if n := len(f.Stream("EVENTS").OfType("sagatest.answered.v1")); n != 1 {
		t.Errorf("%d answers, want 1", n)
	}
}

// A stuck instance is listed as stuck; an operator with the token retries
// it (the definition's retry runs) or cancels an instance, after which
// events are stale. Without the token: 401; retry of an instance that is
// not stuck: 409.
func TestOperatorRetriesAndCancels(t *testing.T) {
	f := newFixture(t, nil, nil)
	f.start("s1", false)
	f.poke("s1", true)
	f.waitFor("stuck", func() bool { return f.view("s1").Status == saga.Stuck })
	r := f.API("GET", "/sagas?type="+toyType+"&status=stuck&limit=10", nil)
	if r.Status != 200 || !strings.Contains(r.Raw, `"id":"s1"`) {
		t.Fatalf("list stuck: %d %s", r.Status, r.Raw)
	}
	for _, bad := range []string{"?type=nope", "?status=lost", "?limit=0"} {
		if r := f.API("GET", "/sagas"+bad, nil); r.Status != 400 {
			t.Errorf("list %s: %d", bad, r.Status)
		}
	}
	auth := []string{"Authorization", "Bearer " + adminToken}
	if r := f.API("POST", "/admin/sagas/"+toyType+"/s1/retry", nil, "Authorization", "Bearer wrong"); r.Status != 401 {
		t.Errorf("retry with a wrong token: %d", r.Status)
	}
	if r := f.API("POST", "/admin/sagas/"+toyType+"/s1/retry", nil, auth...); r.Status != 200 || !strings.Contains(r.Raw, `"status":"completed"`) || f.toy.retries.Load() != 1 {
		t.Fatalf("retry: %d %s", r.Status, r.Raw)
	}
	if r := f.API("POST", "/admin/sagas/"+toyType+"/s1/retry", nil, auth...); r.Status != 409 || r.ErrorCode() != "saga_not_stuck" {
		t.Errorf("retry again: %d %s", r.Status, r.Raw)
	}
	if r := f.API("POST", "/admin/sagas/"+toyType+"/nope/cancel", nil, auth...); r.Status != 404 || r.ErrorCode() != "saga_not_found" {
		t.Errorf("cancel unknown: %d %s", r.Status, r.Raw)
	}

	f.toy.timerFor = time.Hour
	f.start("s2", true)
	if r := f.API("POST", "/admin/sagas/"+toyType+"/s2/cancel", nil, auth...); r.Status != 200 || !strings.Contains(r.Raw, `"status":"cancelled"`) {
		t.Fatalf("cancel: %d %s", r.Status, r.Raw)
	}
	f.poke("s2", false)
	f.Drain()
	v := f.view("s2")
	last := v.History[len(v.History)-1]
	if v.State != "a" || len(v.Timers) != 0 || last.Kind != "stale" || last.Cause.Type != "sagatest.poked.v1" {
		t.Errorf("after cancel and a poke: %+v", v)
	}
	if r := f.API("POST", "/admin/sagas/"+toyType+"/s2/cancel", nil, auth...); r.Status != 409 || r.ErrorCode() != "saga_final" {
		t.Errorf("cancel again: %d %s", r.Status, r.Raw)
	}
}

// With two replicas on one database, every timer fires once, and one
// replica (the holder of the timer lease) fires them.
func TestOneReplicaFiresTimers(t *testing.T) {
	db, nt := testenv.MustDB(t), testenv.MustNATS(t)
	a := newFixture(t, db, nt)
	a.Drain()
	b := newFixture(t, db, nt) // its relay stands by: it cannot drain
	const n = 200
	for i := range n {
		a.start("r"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+time.Duration(i).String(), true)
	}
	a.waitFor("every timer", func() bool { return a.Count(`SELECT count(*) FROM saga.instances WHERE state = 'c'`) == n })
	if fired := a.Count(`SELECT count(*) FROM saga.history WHERE cause_type = 'timer:go'`); fired != n || a.toy.goFired.Load()+b.toy.goFired.Load() != n {
		t.Errorf("%d timer steps recorded (%d + %d handler calls), want %d", fired, a.toy.goFired.Load(), b.toy.goFired.Load(), n)
	}
	if a.toy.goFired.Load() != 0 && b.toy.goFired.Load() != 0 {
		t.Errorf("both replicas fired timers: %d and %d", a.toy.goFired.Load(), b.toy.goFired.Load())
	}
}
