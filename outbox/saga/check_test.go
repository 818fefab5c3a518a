package saga_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/app"
	"github.com/cairn-dev/cairn/config"
	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/testenv"
)

// Start-up refuses to run while running or stuck instances are in states
// this build does not handle (a state no longer listed, a saga no module
// registers), naming each; completed ones, and known states, do not stop
// it.
func TestStartupRefusesUnhandledInstances(t *testing.T) {
	db, nt := testenv.MustDB(t), testenv.MustNATS(t)
	ctx := context.Background()
	start := func() (*app.App, error) {
		cfg := config.Default()
		cfg.HTTPAddr = "127.0.0.1:0"
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		return app.New(cctx, cfg, slog.New(slog.DiscardHandler), app.Options{Modules: []modules.Definition{toyModule}, Pool: db.Pool, NATS: nt.Conn})
	}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO saga.instances (saga_type, id, state, status, version, data) VALUES
		('sagatest_flow', 'ok', 'b', 'running', 2, '{}'),
		('sagatest_flow', 'old-done', 'retired', 'completed', 3, '{}')`); err != nil {
		t.Fatal(err)
	}
	a, err := start()
	if err != nil {
		t.Fatalf("known states refused: %v", err)
	}
	a.Close()
	if _, err := db.Pool.Exec(ctx, `INSERT INTO saga.instances (saga_type, id, state, status, version, data) VALUES
		('sagatest_flow', 'x1', 'retired', 'running', 2, '{}'), ('sagatest_flow', 'x2', 'retired', 'stuck', 2, '{}'),
		('gone_flow', 'y', 'a', 'running', 1, '{}')`); err != nil {
		t.Fatal(err)
	}
	_, err = start()
	var refused *app.RefusedError
	if !errors.As(err, &refused) || refused.ExitCode() != 2 {
		t.Fatalf("start-up did not refuse: %v", err)
	}
	for _, want := range []string{"sagatest_flow/retired: 1 running", "sagatest_flow/retired: 1 stuck", "has no state retired", "gone_flow/a: 1 running", "no module registers saga gone_flow"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal does not say %q: %v", want, err)
		}
	}
}
