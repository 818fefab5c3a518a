// Command cairn is the whole of Cairn in one binary: a modular monolith whose
// modules commit state and events in one PostgreSQL transaction, with a relay
// that publishes the events to NATS JetStream.
//
//	cairn [serve]                        run the server (default)
//	cairn migrate up|down <set>|status   manage the schema
//	cairn <verb> <module>                a command a module offers (rebuild ledger)
//	cairn db url [--password]            the database's URL, for psql
//	cairn nats users                     NATS users for your own server
//	cairn config                         print the effective configuration, secrets masked
//	cairn version                        print the version
//
// Everything but parsing the command line lives in package app.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/cairn-dev/cairn/app"
	"github.com/cairn-dev/cairn/config"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func usage() string {
	return "usage: cairn [serve | migrate up|down <set>|status | db url [--password] | nats users | projection status|rollback <name>|rebuild <name> <version> | replay [--dry-run] <consumer> | config | version | <verb> <module>]\n\n" +
		"Commands the modules offer:\n" + app.ModuleCommands() +
		"\nSettings come from CAIRN_* environment variables; see README.md.\n"
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command and returns the process exit code: 0 success,
// 1 failure, 2 bad usage or configuration (or a start-up that refuses to
// run on the database as it is).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "cairn", fullVersion())
		return 0
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage())
		return 0
	case "serve", "migrate", "config", "db", "nats", "projection", "replay":
	default:
		if !app.OffersCommand(cmd) {
			fmt.Fprintf(stderr, "cairn: unknown command %q\n%s", cmd, usage())
			return 2
		}
	}
	cfg, err := config.Load(os.LookupEnv)
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		fmt.Fprintf(stderr, "cairn: configuration error:\n%v\n", err)
		return 2
	}
	log := newLogger(cfg, stderr)
	switch cmd {
	case "config":
		if err := cfg.Print(stdout); err != nil {
			return 1
		}
		return 0
	case "migrate":
		return app.MigrateCommand(ctx, cfg, log, args, stdout, stderr)
	case "db":
		return app.DBCommand(ctx, cfg, args, stdout, stderr)
	case "nats":
		return app.NATSCommand(cfg, args, stdout, stderr)
	case "projection":
		return app.ProjectionCommand(ctx, cfg, log, args, stdout, stderr)
	case "replay":
		return app.ReplayCommand(ctx, cfg, args, stdout, stderr)
	case "serve":
	default:
		return app.ModuleCommand(ctx, cfg, log, cmd, args, stdout, stderr)
	}
	if len(args) > 0 {
		fmt.Fprintf(stderr, "cairn: serve takes no arguments\n%s", usage())
		return 2
	}
	for _, w := range []string{cfg.PublicURLWarning(), cfg.SubscribersWarning()} {
		if w != "" {
			log.Warn(w)
		}
	}
	err = app.Serve(ctx, cfg, log, fullVersion())
	switch {
	case err != nil && ctx.Err() != nil:
		// Ctrl-C or SIGTERM during start-up: whatever start-up waited for
		// gave up, and what had started is stopped.
		log.Info("start-up interrupted; stopped", "err", err)
		return 0
	case err != nil:
		log.Error("cairn stopped with an error", "err", err)
		// A start-up that refuses to run on this database is a
		// configuration matter (exit 2), like a bad setting.
		var refused *app.RefusedError
		if errors.As(err, &refused) {
			return refused.ExitCode()
		}
		return 1
	}
	return 0
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.SlogLevel()}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func fullVersion() string {
	v := version
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " (" + s.Value[:12] + ")"
			}
		}
	}
	return v
}
