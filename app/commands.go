package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/cairn-dev/cairn/config"
	"github.com/cairn-dev/cairn/migrations"
	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/outbox/saga"
)

// MigrateCommand runs `cairn migrate up|down <platform|module>|status` and
// returns the exit code.
func MigrateCommand(ctx context.Context, cfg config.Config, log *slog.Logger, args []string, stdout, stderr io.Writer) int {
	defs := Modules()
	names := []string{migrations.PlatformName, saga.MigrationsName}
	for _, d := range defs {
		names = append(names, d.Name)
	}
	ok := len(args) == 1 && (args[0] == "up" || args[0] == "status") || len(args) == 2 && args[0] == "down"
	if !ok {
		fmt.Fprintf(stderr, "usage: cairn migrate up | down <%s> | status\n", strings.Join(names, "|"))
		return 2
	}
	in, err := openDatabase(ctx, cfg, log, nil)
	if err != nil {
		log.Error("migrate", "err", err)
		return 1
	}
	defer in.closeWithin(cfg.ShutdownTimeout)
	db := in.sqlDB()
	defer db.Close()
	r, err := Migrator(db, defs)
	if err != nil {
		log.Error("migrate", "err", err)
		return 1
	}
	switch args[0] {
	case "up":
		res, err := r.Up(ctx)
		for _, m := range res {
			fmt.Fprintf(stdout, "applied %s/%s (%s)\n", m.Source, m.Path, m.Duration.Round(time.Millisecond))
		}
		if err != nil {
			log.Error("migrate up", "err", err)
			return 1
		}
		if len(res) == 0 {
			fmt.Fprintln(stdout, "no pending migrations")
		}
	case "down":
		m, err := r.Down(ctx, args[1])
		if err != nil {
			log.Error("migrate down", "err", err)
			return 1
		}
		fmt.Fprintf(stdout, "rolled back %s/%s\n", m.Source, m.Path)
	case "status":
		st, err := r.Status(ctx)
		if err != nil {
			log.Error("migrate status", "err", err)
			return 1
		}
		for _, s := range st {
			at := "pending"
			if s.Applied {
				at = "applied " + s.AppliedAt.Format(time.RFC3339)
			}
			fmt.Fprintf(stdout, "%-40s %s\n", s.Source+"/"+s.Path, at)
		}
	}
	return 0
}

// ModuleCommands lists what the modules offer on the command line, one
// "verb module  summary" line each, for cairn's usage.
func ModuleCommands() string {
	var b strings.Builder
	for _, d := range Modules() {
		for _, c := range d.Commands {
			fmt.Fprintf(&b, "  cairn %-22s %s\n", c.Name+" "+d.Name, c.Summary)
		}
	}
	return b.String()
}

// OffersCommand reports whether some module offers the verb.
func OffersCommand(verb string) bool {
	_, offers := moduleCommand(verb, "")
	return len(offers) > 0
}

// moduleCommand finds module's command verb, and lists who offers verb.
func moduleCommand(verb, module string) (cmd *modules.Command, offers []string) {
	for _, d := range Modules() {
		for i, c := range d.Commands {
			if c.Name == verb {
				offers = append(offers, d.Name)
				if d.Name == module {
					cmd = &d.Commands[i]
				}
			}
		}
	}
	return cmd, offers
}

// ModuleCommand runs `cairn <verb> <module> [args]`, a command a module
// offers, against the database, and returns the exit code.
func ModuleCommand(ctx context.Context, cfg config.Config, log *slog.Logger, verb string, args []string, stdout, stderr io.Writer) int {
	module := ""
	if len(args) > 0 {
		module = args[0]
	}
	cmd, offers := moduleCommand(verb, module)
	if cmd == nil {
		fmt.Fprintf(stderr, "usage: cairn %s %s\n", verb, strings.Join(offers, "|"))
		return 2
	}
	in, err := openDatabase(ctx, cfg, log, nil)
	if err != nil {
		log.Error(verb, "err", err)
		return 1
	}
	defer in.closeWithin(cfg.ShutdownTimeout)
	if err := cmd.Run(ctx, in.pool, args[1:], stdout); err != nil {
		log.Error(verb+" "+module, "err", err)
		return 1
	}
	return 0
}
