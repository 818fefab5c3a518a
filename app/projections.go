package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"

	"github.com/cairn-dev/cairn/config"

	"github.com/cairn-dev/cairn/outbox/projection"
	"github.com/cairn-dev/cairn/outbox/projection/natslive"
)

// openProjections builds the runtime of the projections the modules
// registered and adds GET /api/v1/admin/projections. A version's holder
// keeps one connection for its term (its staging table lives on it), so
// the runtime has a pool of its own, sized for every projection plus the
// status reads, and another for its leases: a renewal never waits behind
// a build. JIT off: the apply statements' plans look costly enough to
// compile, and compiling costs more than they take.
func (a *App) openProjections(ctx context.Context) error {
	n := int32(len(a.projections.All()))
	pool, err := a.infra.sidePool(ctx, "projections", n+2, map[string]string{"jit": "off"})
	if err != nil {
		return err
	}
	leases, err := a.infra.sidePool(ctx, "projection leases", 2, nil)
	if err != nil {
		return err
	}
	a.projRuntime = projection.NewRuntime(a.projections, projection.Options{
		Pool: pool, LeasePool: leases, Stream: natslive.Stream{JS: a.infra.js},
		Lake: a.cfg.LakeOn(), Holder: holder(), Logger: a.log,
	})
	a.projRuntime.RegisterAdmin(a.web.Group("/api/v1/admin"), a.cfg.AdminToken)
	return nil
}

// Projections is the app's projection runtime (status, for tests).
func (a *App) Projections() *projection.Runtime { return a.projRuntime }

// ProjectionCommand runs `cairn projection status | rollback <name> |
// rebuild <name> <version>` against the database and returns the exit
// code. Rollback switches the queries back to the version live before;
// rebuild drops a version that is not live (a failed one) so the replicas
// whose code declares it build it again.
func ProjectionCommand(ctx context.Context, cfg config.Config, log *slog.Logger, args []string, stdout, stderr io.Writer) int {
	ok := len(args) == 1 && args[0] == "status" || len(args) == 2 && args[0] == "rollback" || len(args) == 3 && args[0] == "rebuild"
	if !ok {
		fmt.Fprintln(stderr, "usage: cairn projection status | rollback <name> | rebuild <name> <version>")
		return 2
	}
	in, err := openCommandDatabase(ctx, cfg, log)
	if err != nil {
		log.Error("projection", "err", err)
		return 1
	}
	defer in.closeWithin(cfg.ShutdownTimeout)
	switch args[0] {
	case "status":
		st, err := projection.NewRuntime(projection.NewRegistry(), projection.Options{Pool: in.pool}).Status(ctx)
		if err != nil {
			log.Error("projection status", "err", err)
			return 1
		}
		for _, p := range st {
			live := "none"
			if p.LiveVersion != nil {
				live = strconv.Itoa(*p.LiveVersion)
			}
			fmt.Fprintf(stdout, "%s: live version %s\n", p.Name, live)
			for _, v := range p.Versions {
				fmt.Fprintf(stdout, "  v%d %-12s stream_seq %d position %d\n", v.Version, v.State, v.StreamSeq, v.CoveredPosition)
			}
		}
	case "rollback":
		from, to, err := projection.Rollback(ctx, in.pool, args[1])
		if err != nil {
			log.Error("projection rollback", "err", err)
			return 1
		}
		fmt.Fprintf(stdout, "%s: queries switched from version %d back to version %d\n", args[1], from, to)
	case "rebuild":
		v, err := strconv.Atoi(args[2])
		if err != nil {
			fmt.Fprintln(stderr, "usage: cairn projection rebuild <name> <version>: the version is a number")
			return 2
		}
		if err := projection.Rebuild(ctx, in.pool, args[1], v); err != nil {
			log.Error("projection rebuild", "err", err)
			return 1
		}
		fmt.Fprintf(stdout, "%s: version %d dropped; the replicas that declare it build it again\n", args[1], v)
	}
	return 0
}
