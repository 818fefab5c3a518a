package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/cairn-dev/cairn/config"
	"github.com/cairn-dev/cairn/migrations"
)

// migrateCommand runs `cairn migrate up|down|status`.
func migrateCommand(ctx context.Context, cfg config.Config, log *slog.Logger, args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 || (args[0] != "up" && args[0] != "down" && args[0] != "status") {
		fmt.Fprintf(stderr, "usage: cairn migrate up|down|status\n")
		return 2
	}
	in, err := openDatabase(ctx, cfg, log)
	if err != nil {
		log.Error("migrate", "err", err)
		return 1
	}
	defer in.closeWithin(cfg.ShutdownTimeout)
	db := in.sqlDB()
	defer db.Close()
	p, err := migrations.NewProvider(db)
	if err != nil {
		log.Error("migrate", "err", err)
		return 1
	}
	switch args[0] {
	case "up":
		res, err := p.Up(ctx)
		for _, r := range res {
			fmt.Fprintf(stdout, "applied %s (%s)\n", r.Source.Path, r.Duration.Round(time.Millisecond))
		}
		if err != nil {
			log.Error("migrate up", "err", err)
			return 1
		}
		if len(res) == 0 {
			fmt.Fprintln(stdout, "no pending migrations")
		}
	case "down":
		r, err := p.Down(ctx)
		if err != nil {
			log.Error("migrate down", "err", err)
			return 1
		}
		fmt.Fprintf(stdout, "rolled back %s\n", r.Source.Path)
	case "status":
		st, err := p.Status(ctx)
		if err != nil {
			log.Error("migrate status", "err", err)
			return 1
		}
		for _, s := range st {
			at := "pending"
			if s.State == "applied" {
				at = "applied " + s.AppliedAt.Format(time.RFC3339)
			}
			fmt.Fprintf(stdout, "%-30s %s\n", s.Source.Path, at)
		}
	}
	return 0
}
