package projection

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/outbox/lease"
)

// Options tune the runtime; zero values mean the defaults.
type Options struct {
	// Pool is where versions are built and fed (one connection per version
	// this replica leads, held for its term) and the status is read.
	Pool *pgxpool.Pool
	// LeasePool is what the versions' leases run on (default Pool).
	LeasePool *pgxpool.Pool
	// Stream reaches the stream.
	Stream Stream
	// Lake: the lake is being filled (CAIRN_LAKE=on). Without it a version
	// is built from what the lake holds and the stream, and switched
	// without verification, which has nothing to compare with.
	Lake bool
	// Holder names this replica in outbox.leases (default host/pid).
	Holder string
	Logger *slog.Logger
	// LeaseTTL (default 5s).
	LeaseTTL time.Duration
	// ChunkPositions is how many lake positions one build transaction
	// reads (default 20,000).
	ChunkPositions int64
	// BatchEvents is the most events one stream transaction applies
	// (default 2,000).
	BatchEvents int
	// LakeWait is how long a verification waits for the lake to hold every
	// event the version applied (default 2 min; the lake trails the stream
	// by the relay's delete delay, a few seconds).
	LakeWait time.Duration
	// RecheckAfter is how long a verification that found differences
	// waits before it compares once more, in case the lake was still
	// taking in events the version had applied (default 3 s).
	RecheckAfter time.Duration
	// CoverEvery is how often a following version moves its covered lake
	// position on and rereads its state (default 1 s).
	CoverEvery time.Duration
}

func (o *Options) setDefaults() {
	if o.LeasePool == nil {
		o.LeasePool = o.Pool
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 5 * time.Second
	}
	if o.ChunkPositions <= 0 {
		o.ChunkPositions = 20_000
	}
	if o.BatchEvents <= 0 {
		o.BatchEvents = 2000
	}
	if o.LakeWait <= 0 {
		o.LakeWait = 2 * time.Minute
	}
	if o.RecheckAfter <= 0 {
		o.RecheckAfter = 3 * time.Second
	}
	if o.CoverEvery <= 0 {
		o.CoverEvery = time.Second
	}
}

// Runtime builds, feeds, verifies and switches the registered projections'
// versions: on every replica it campaigns for the lease of each version
// this build declares, and the holder does the work.
type Runtime struct {
	reg    *Registry
	opt    Options
	log    *slog.Logger
	leases map[string]*lease.Lease
	mu     sync.Mutex
	errs   map[string]string // the last error per projection, for the status
}

// NewRuntime returns a runtime for the projections of reg.
func NewRuntime(reg *Registry, opt Options) *Runtime {
	opt.setDefaults()
	r := &Runtime{reg: reg, opt: opt, log: opt.Logger.With("component", "projection"),
		leases: map[string]*lease.Lease{}, errs: map[string]string{}}
	for _, p := range reg.All() {
		s := p.spec
		name := leaseName(s.Name, s.Version)
		r.leases[s.Name] = lease.New(opt.LeasePool, name, lease.Options{
			TTL: opt.LeaseTTL, Holder: opt.Holder, Logger: r.log.With("projection", s.Name, "version", s.Version),
			OnError: func(err error) { r.noteError(s.Name, err) },
		})
	}
	return r
}

func (r *Runtime) noteError(name string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		delete(r.errs, name)
		return
	}
	r.errs[name] = err.Error()
}

// Run works on every projection until ctx ends.
func (r *Runtime) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, p := range r.reg.All() {
		l := r.leases[p.spec.Name]
		wg.Go(func() {
			_ = l.Run(ctx, func(tctx context.Context, t *lease.Term) error {
				return r.lead(tctx, t, p)
			})
		})
	}
	wg.Wait()
	return ctx.Err()
}

// lead runs one term of a version's lease: it takes a connection for the
// term (the staging table lives on it) and moves the version through its
// states until the term or ctx ends.
func (r *Runtime) lead(ctx context.Context, t *lease.Term, p *Projection) error {
	c, err := r.opt.Pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("projection %s: take a connection: %w", p.spec.Name, err)
	}
	defer c.Release()
	conn := c.Conn()
	if err := ensureBatchTable(ctx, conn); err != nil {
		return err
	}
	w := &worker{r: r, p: p, s: p.spec, t: TablesOf(p.spec, p.spec.Version), conn: conn, term: t,
		log: r.log.With("projection", p.spec.Name, "version", p.spec.Version)}
	defer w.stopFeed()
	err = w.run(ctx)
	if ctx.Err() != nil || fenced(err) {
		return nil
	}
	r.noteError(p.spec.Name, err)
	return err
}
