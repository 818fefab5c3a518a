package app_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/app"
	"github.com/cairn-dev/cairn/config"
	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/testenv"
)

// probe is a module whose only act is to subscribe as on says.
func probe(on func(*outbox.Subscriptions) error) modules.Definition {
	return modules.Define("probe", nil, func(d modules.Deps) (struct{}, error) { return struct{}{}, on(d.Consumers) })
}

func ignore[T any](context.Context, pgx.Tx, outbox.Received[T]) error { return nil }

// A module whose handler contradicts the event catalog stops start-up, and
// the error names the consumer, the event type and both sides: an unknown
// type, a wrong visibility, a payload type that cannot decode the declared
// one. The same module subscribing correctly starts.
func TestStartupRefusesMismatchedSubscriptions(t *testing.T) {
	type created struct {
		UserID   string `json:"user_id"`
		Username string `json:"username"`
	}
	type createdWrongly struct {
		UserID   string `json:"user_id"`
		Username int    `json:"username"`
	}
	cases := []struct {
		name string
		on   func(*outbox.Subscriptions) error
		want []string
	}{{
		name: "unknown type",
		on: func(s *outbox.Subscriptions) error {
			return outbox.Handle(s, "probe_deleted", outbox.Named[created]("users.account_deleted.v1", outbox.Public), ignore[created])
		},
		want: []string{"module probe", "consumer probe_deleted", "users.account_deleted.v1", "which no module declares"},
	}, {
		name: "another module's consumer name",
		on: func(s *outbox.Subscriptions) error {
			return outbox.Handle(s, "mail_created", outbox.Named[created]("users.account_created.v1", outbox.Public), ignore[created])
		},
		want: []string{"module probe", "consumer mail_created must be named probe_<handler>"},
	}, {
		name: "wrong visibility",
		on: func(s *outbox.Subscriptions) error {
			return outbox.Handle(s, "probe_tokens", outbox.Named[created]("users.activation_requested.v1", outbox.Public), ignore[created])
		},
		want: []string{"consumer probe_tokens", "users.activation_requested.v1 as public", "declared internal"},
	}, {
		name: "wrong payload type",
		on: func(s *outbox.Subscriptions) error {
			return outbox.Handle(s, "probe_created", outbox.Named[createdWrongly]("users.account_created.v1", outbox.Public), ignore[createdWrongly])
		},
		want: []string{"consumer probe_created", "users.account_created.v1", "app_test.createdWrongly", "users.AccountCreated", `field "username"`},
	}}
	db, nt := testenv.MustDB(t), testenv.MustNATS(t)
	start := func(def modules.Definition) (*app.App, error) {
		cfg := config.Default()
		cfg.HTTPAddr = "127.0.0.1:0"
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return app.New(ctx, cfg, slog.New(slog.DiscardHandler), app.Options{Modules: []modules.Definition{def}, Pool: db.Pool, NATS: nt.Conn})
	}
	for _, c := range cases {
		a, err := start(probe(c.on))
		if err == nil {
			a.Close()
			t.Errorf("%s: the app started", c.name)
			continue
		}
		t.Logf("%s: %v", c.name, err)
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not mention %q", c.name, err, w)
			}
		}
	}
	// A subscription without a replay policy stops start-up, naming it.
	if a, err := start(probe(func(s *outbox.Subscriptions) error {
		return outbox.Handle(s, "probe_created", outbox.Named[created]("users.account_created.v1", outbox.Public), ignore[created])
	})); err == nil {
		a.Close()
		t.Error("a subscription without a replay policy started")
	} else if !strings.Contains(err.Error(), "probe_created") || !strings.Contains(err.Error(), "replay policy") {
		t.Errorf("no policy: %v", err)
	}
	a, err := start(probe(func(s *outbox.Subscriptions) error {
		return outbox.Handle(s, "probe_created", outbox.Named[created]("users.account_created.v1", outbox.Public), ignore[created],
			outbox.NeverReplay("a probe"))
	}))
	if err != nil {
		t.Fatalf("a matching subscription: %v", err)
	}
	if subs := a.Subscriptions(); len(subs) != 1 || subs[0].Consumer != "probe_created" {
		t.Fatalf("subscriptions %+v", subs)
	}
	a.Close()
	if err := db.Pool.Ping(context.Background()); err != nil {
		t.Fatalf("Close closed the pool the app was lent: %v", err)
	}
}

// Every module builds on bare Deps (a pool and the default settings, no
// HTTP, no log, no consumers), as a test that needs none of them builds it.
func TestModulesBuildOnBareDeps(t *testing.T) {
	db := testenv.MustDB(t)
	for _, def := range app.Modules() {
		if m, err := def.Build(modules.Deps{Pool: db.Pool, Config: config.Default()}); err != nil || m == nil {
			t.Errorf("%s on bare Deps: %v", def.Name, err)
		}
	}
}
