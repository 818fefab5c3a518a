package saga_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/config"
	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/saga"
	"github.com/cairn-dev/cairn/testenv"
)

// The toy saga the runtime's tests drive, in a module of their own
// (sagatest): poked moves an instance from a to b; in b nothing handles
// it. Timer "go" moves it to c (final); "stall" makes it stuck; a retry
// moves it to c.
var (
	poked = outbox.Declare[poke](outbox.EventSpec{Type: "sagatest.poked.v1", Visibility: outbox.Public, Description: "A test pokes an instance."})
	sent  = outbox.Declare[poke](outbox.EventSpec{Type: "sagatest.answered.v1", Visibility: outbox.Public, Description: "An instance answered a poke."})
)

type poke struct {
	ID    string `json:"id"`
	Stall bool   `json:"stall"`
}

type toyData struct {
	Pokes int `json:"pokes"`
	Fired int `json:"fired"`
}

const toyType = "sagatest_flow"

// toy is the saga's definition and what its handlers did.
type toy struct {
	def      *saga.Definition[toyData]
	goFired  atomic.Int64
	retries  atomic.Int64
	timerFor time.Duration
}

func newToy(d modules.Deps) (*toy, error) {
	t := &toy{timerFor: 300 * time.Millisecond}
	t.def = saga.Define[toyData](saga.Spec{Type: toyType, Initial: "a", States: []saga.State{{Name: "a"}, {Name: "b"}, {Name: "c", Final: true}}})
	saga.On(t.def, "poked", poked, func(e outbox.Received[poke]) string { return e.Data.ID },
		map[string]saga.Handler[toyData, poke]{"a": func(_ context.Context, s *saga.Step[toyData], e outbox.Received[poke]) error {
			s.Data.Pokes++
			if e.Data.Stall {
				s.Stuck("asked to stall")
				return nil
			}
			s.Send(sent.New(s.ID(), poke{ID: s.ID()}))
			s.Goto("b") // leaves timer "go", if set, to go stale
			return nil
		}})
	saga.OnTimer(t.def, "go", func(_ context.Context, s *saga.Step[toyData]) error {
		t.goFired.Add(1)
		s.Data.Fired++
		s.Goto("c")
		return nil
	})
	saga.OnRetry(t.def, func(_ context.Context, s *saga.Step[toyData]) error {
		t.retries.Add(1)
		s.Goto("c")
		return nil
	})
	return t, d.Sagas.Register(t.def)
}

var toyModule = modules.Define("sagatest", nil, newToy)

type fixture struct {
	*testenv.App
	t   *testing.T
	toy *toy
}

const adminToken = "saga-admin"

func newFixture(t *testing.T, db *testenv.DB, nt *testenv.NATS) *fixture {
	t.Helper()
	a := testenv.StartApp(t, testenv.AppOptions{Modules: []modules.Definition{toyModule}, DB: db, NATS: nt,
		Config: func(c *config.Config) { c.AdminToken = adminToken }})
	if db == nil {
		a.Drain() // every consumer is consuming
	}
	return &fixture{App: a, t: t, toy: a.Module("sagatest").(*toy)}
}

// start begins an instance in a, with timer "go" if withTimer.
func (f *fixture) start(id string, withTimer bool) {
	f.t.Helper()
	err := pgx.BeginFunc(context.Background(), f.DB.Pool, func(tx pgx.Tx) error {
		return f.toy.def.Start(context.Background(), tx, id, toyData{}, "test", func(_ context.Context, s *saga.Step[toyData]) error {
			if withTimer {
				s.SetTimer("go", f.toy.timerFor)
			}
			return nil
		})
	})
	if err != nil {
		f.t.Fatal(err)
	}
}

// poke appends sagatest.poked.v1 for instance id.
func (f *fixture) poke(id string, stall bool) {
	f.t.Helper()
	err := pgx.BeginFunc(context.Background(), f.DB.Pool, func(tx pgx.Tx) error {
		_, err := outbox.Append(context.Background(), tx, poked.New(id, poke{ID: id, Stall: stall}))
		return err
	})
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) view(id string) saga.View {
	f.t.Helper()
	r := f.API("GET", "/sagas/"+toyType+"/"+id, nil)
	if r.Status != 200 {
		f.t.Fatalf("get %s: %d %s", id, r.Status, r.Raw)
	}
	var v saga.View
	if err := json.Unmarshal([]byte(r.Raw), &v); err != nil {
		f.t.Fatal(err)
	}
	return v
}

func (f *fixture) waitFor(what string, cond func() bool) {
	f.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			f.t.Fatalf("%s: not within 20s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
