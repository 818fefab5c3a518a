package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/cairn-dev/cairn/config"
	"github.com/cairn-dev/cairn/modules/ledger"
)

// rebuildCommand runs `cairn rebuild <module>`: recompute a module's
// projections from its event log.
func rebuildCommand(ctx context.Context, cfg config.Config, log *slog.Logger, args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 || args[0] != "ledger" {
		fmt.Fprintln(stderr, "usage: cairn rebuild ledger")
		return 2
	}
	in, err := openDatabase(ctx, cfg, log)
	if err != nil {
		log.Error("rebuild", "err", err)
		return 1
	}
	defer in.closeWithin(cfg.ShutdownTimeout)
	r, err := ledger.Rebuild(ctx, in.pool)
	if err != nil {
		log.Error("rebuild", "err", err)
		return 1
	}
	fmt.Fprintf(stdout, "ledger: %d accounts rebuilt from the log, %d corrected\n", r.Accounts, r.Corrected)
	return 0
}
