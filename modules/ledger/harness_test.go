package ledger_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-dev/cairn/config"
	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/modules/ledger"
	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/testenv"
	"github.com/cairn-dev/cairn/web"
)

// app is the ledger served over real HTTP on a fresh database, with a relay
// publishing to a real NATS.
type app struct {
	t      *testing.T
	url    string
	ledger *ledger.Module
	db     *testenv.DB
	nats   *testenv.NATS
}

func newApp(t *testing.T) *app {
	t.Helper()
	db := testenv.MustDB(t)
	nt := testenv.MustNATS(t)
	log := slog.New(slog.DiscardHandler)
	e := web.NewServer(log)
	m, err := ledger.New(modules.Deps{Pool: db.Pool, API: e.Group("/api/v1"), Log: log, Config: config.Default()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	testenv.MustRelay(t, db, nt)
	return &app{t: t, url: srv.URL + "/api/v1", ledger: m.(*ledger.Module), db: db, nats: nt}
}

type response = testenv.Response

// do sends a request to the module's API (see testenv.Do).
func (a *app) do(method, path string, body any, header ...string) response {
	a.t.Helper()
	return testenv.Do(a.t, method, a.url+path, body, header...)
}

func (a *app) open(currency string) string {
	a.t.Helper()
	r := a.do("POST", "/accounts", map[string]any{"owner": "Ada", "currency": currency})
	if r.Status != 201 {
		a.t.Fatalf("open account: %d %s", r.Status, r.Raw)
	}
	return r.Body["id"].(string)
}

// events reads the ledger events of one account from the stream, in order.
func (a *app) events(accountID string, want int) []outbox.CloudEvent {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := a.nats.JS.Stream(ctx, outbox.PublicStream)
	if err != nil {
		a.t.Fatal(err)
	}
	var out []outbox.CloudEvent
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		info, err := s.Info(ctx)
		if err != nil {
			a.t.Fatal(err)
		}
		if info.State.Msgs < uint64(want) {
			continue
		}
		time.Sleep(300 * time.Millisecond)
		out = nil
		info, _ = s.Info(ctx)
		for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
			m, err := s.GetMsg(ctx, seq)
			if err != nil {
				a.t.Fatal(err)
			}
			var ce outbox.CloudEvent
			if err := json.Unmarshal(m.Data, &ce); err != nil {
				a.t.Fatal(err)
			}
			if ce.Subject == accountID {
				out = append(out, ce)
			}
		}
		if len(out) >= want {
			return out
		}
	}
	return out
}

var _ = jetstream.MsgIDHeader
