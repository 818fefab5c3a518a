package projection

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/outbox/lease"
)

// worker is one term of a version's holder.
type worker struct {
	r    *Runtime
	p    *Projection
	s    Spec
	t    Tables
	conn *pgx.Conn
	term *lease.Term
	log  *slog.Logger

	feed     Feed
	feedNext uint64 // the sequence the open feed delivers next
	apply    []string
}

// run moves the version through its states until ctx (the term) ends.
func (w *worker) run(ctx context.Context) error {
	w.apply = make([]string, len(w.s.Apply))
	for i, q := range w.s.Apply {
		w.apply[i] = w.t.SQL(q)
	}
	for ctx.Err() == nil {
		v, err := w.ensure(ctx)
		if err != nil {
			return err
		}
		switch v.State {
		case Building:
			err = w.build(ctx, v)
		case CatchingUp, Verifying:
			err = w.promote(ctx, v)
		case Live, Retired:
			err = w.follow(ctx, v)
		case Failed:
			// Reported; nothing to do until the version is dropped to be
			// built again (cairn projection rebuild) or a newer one ships.
			sleepCtx(ctx, 2*time.Second)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// base is a step of this term, fenced by its lease.
func (w *worker) base() step {
	return step{lease: w.term.Name, token: w.term.Token}
}

// ensure loads the version's row, making the row and its tables when there
// is none, or when its tables are gone (the module's schema was dropped).
func (w *worker) ensure(ctx context.Context) (Version, error) {
	v, err := loadVersion(ctx, w.conn, w.s.Name, w.s.Version)
	if err == nil {
		var whole bool
		if err := w.conn.QueryRow(ctx, `SELECT bool_and(to_regclass(t) IS NOT NULL) FROM unnest($1::text[]) t`, v.Tables).Scan(&whole); err != nil {
			return v, fmt.Errorf("projection %s v%d: look for its tables: %w", w.s.Name, w.s.Version, err)
		}
		if whole {
			return v, nil
		}
		w.log.Warn("the version's tables are gone; building it again")
	} else if !errors.Is(err, errNoVersion) {
		return v, err
	}
	st := w.base()
	st.durable = true
	phys := w.t.physical()
	for _, t := range phys {
		st.then = append(st.then, queued{sql: `DROP TABLE IF EXISTS ` + t})
	}
	st.then = append(st.then, queued{sql: `DELETE FROM projection.versions WHERE name = $1 AND version = $2`, args: []any{w.s.Name, w.s.Version}})
	st.then = append(st.then, queued{sql: `INSERT INTO projection.versions (name, version, state, tables, stream, build_target)
		SELECT $1, $2, 'building', $3, $4, position FROM lake.head`, args: []any{w.s.Name, w.s.Version, phys, w.p.stream}})
	for _, q := range w.s.Create {
		if !deferred(q) {
			st.then = append(st.then, queued{sql: w.t.SQL(q)})
		}
	}
	if err := st.run(ctx, w.conn); err != nil {
		return v, fmt.Errorf("projection %s v%d: make its tables: %w", w.s.Name, w.s.Version, err)
	}
	w.log.Info("building a new version from the lake")
	return loadVersion(ctx, w.conn, w.s.Name, w.s.Version)
}

// build applies the lake's events up to the build target, a chunk of
// positions per transaction (resuming where a previous term stopped), then
// hands over to the stream.
func (w *worker) build(ctx context.Context, v Version) error {
	began, from := time.Now(), v.LakePosition
	lastLog := began
	for pos := v.LakePosition; pos < v.BuildTarget; {
		end := min(pos+w.r.opt.ChunkPositions, v.BuildTarget)
		st := w.base()
		st.stage, st.analyze, st.apply = stageLake(pos, end, w.s.Events), true, w.apply
		st.name, st.version, st.lakePos, st.seq, st.pending = w.s.Name, w.s.Version, end, v.StreamSeq, v.BuildTarget-end
		if err := st.run(ctx, w.conn); err != nil {
			return fmt.Errorf("projection %s v%d: build positions %d to %d: %w", w.s.Name, w.s.Version, pos, end, err)
		}
		pos = end
		if time.Since(lastLog) > 5*time.Second {
			w.log.Info("building", "position", pos, "target", v.BuildTarget)
			lastLog = time.Now()
		}
	}
	seq, err := handoffSeq(ctx, w.conn, w.p.stream, v.BuildTarget)
	if err != nil {
		return err
	}
	st := w.base()
	st.then = nil
	for _, q := range w.s.Create {
		if deferred(q) {
			st.then = append(st.then, queued{sql: w.t.SQL(q)})
		}
	}
	st.then = append(st.then, queued{sql: `UPDATE projection.versions SET state = 'catching_up', handoff_seq = $3::bigint, stream_seq = $3::bigint - 1,
		covered_position = lake_position, state_at = clock_timestamp(), updated_at = clock_timestamp()
		WHERE name = $1 AND version = $2`, args: []any{w.s.Name, w.s.Version, int64(seq)}})
	if err := st.run(ctx, w.conn); err != nil {
		return fmt.Errorf("projection %s v%d: hand over to the stream: %w", w.s.Name, w.s.Version, err)
	}
	w.log.Info("built from the lake; following the stream", "lake_position", v.BuildTarget, "positions", v.BuildTarget-from,
		"seconds", time.Since(began).Seconds(), "from_stream_seq", seq)
	return nil
}

// openFeed makes sure a feed delivers from sequence from on.
func (w *worker) openFeed(ctx context.Context, from uint64) error {
	if w.feed != nil && w.feedNext == from {
		return nil
	}
	w.stopFeed()
	f, err := w.r.opt.Stream.Follow(ctx, w.p.stream, w.s.subjects(), from)
	if err != nil {
		return fmt.Errorf("projection %s v%d: follow %s from %d: %w", w.s.Name, w.s.Version, w.p.stream, from, err)
	}
	w.feed, w.feedNext = f, from
	return nil
}

func (w *worker) stopFeed() {
	if w.feed != nil {
		w.feed.Stop()
		w.feed = nil
	}
}

// applyNext applies the next events of the feed, if any come within wait,
// in one transaction. It returns how many and how many are left.
func (w *worker) applyNext(ctx context.Context, wait time.Duration) (int, uint64, error) {
	events, pending, err := w.feed.Next(ctx, w.r.opt.BatchEvents, wait)
	if err != nil {
		w.stopFeed()
		return 0, 0, fmt.Errorf("projection %s v%d: read the stream: %w", w.s.Name, w.s.Version, err)
	}
	if len(events) == 0 {
		return 0, pending, nil
	}
	last := events[len(events)-1].Seq
	st := w.base()
	st.stage, st.analyze, st.apply = stageEvents(events), len(events) >= analyzeAbove, w.apply
	st.name, st.version, st.seq, st.pending = w.s.Name, w.s.Version, int64(last), int64(pending)
	if err := st.run(ctx, w.conn); err != nil {
		// The feed went past what was committed: read it again from
		// the checkpoint.
		w.stopFeed()
		return 0, 0, fmt.Errorf("projection %s v%d: apply %d events up to stream sequence %d: %w", w.s.Name, w.s.Version, len(events), last, err)
	}
	w.feedNext = last + 1
	return len(events), pending, nil
}

// catchUp applies the feed until it is caught up.
func (w *worker) catchUp(ctx context.Context) error {
	for ctx.Err() == nil {
		n, pending, err := w.applyNext(ctx, time.Second)
		if err != nil {
			return err
		}
		if pending == 0 || n == 0 {
			return nil
		}
	}
	return ctx.Err()
}

// promote takes a built version from the stream phase to live: caught up,
// verified at a cut, caught up again, switched. A version that fails
// verification is marked failed, with the report.
func (w *worker) promote(ctx context.Context, v Version) error {
	if err := w.openFeed(ctx, uint64(v.StreamSeq)+1); err != nil {
		return err
	}
	if v.State == CatchingUp {
		if err := w.catchUp(ctx); err != nil {
			return err
		}
		if err := w.setState(ctx, Verifying, nil); err != nil {
			return err
		}
	}
	// The feed is not read while verifying: what the version reflects
	// stays the cut.
	v, err := loadVersion(ctx, w.conn, w.s.Name, w.s.Version)
	if err != nil {
		return err
	}
	rep, err := w.verify(ctx, v)
	if err != nil {
		return err
	}
	if err := w.saveReport(ctx, rep); err != nil {
		return err
	}
	if !rep.OK {
		why := "verification failed: " + rep.Describe()
		w.log.Error("the new version failed verification and is not switched", "report", rep.Describe())
		return w.setState(ctx, Failed, &why)
	}
	if err := w.catchUp(ctx); err != nil {
		return err
	}
	return w.switchLive(ctx)
}

func (w *worker) setState(ctx context.Context, s State, why *string) error {
	st := w.base()
	st.durable = true
	st.then = []queued{{sql: setStateSQL, args: []any{w.s.Name, w.s.Version, string(s), why}}}
	if err := st.run(ctx, w.conn); err != nil {
		return fmt.Errorf("projection %s v%d: move to %s: %w", w.s.Name, w.s.Version, s, err)
	}
	return nil
}

// verify compares every check at the cut the version stands at.
func (w *worker) verify(ctx context.Context, v Version) (Report, error) {
	cut := Cut{LakePosition: v.LakePosition, Stream: v.Stream, StreamSeq: v.StreamSeq}
	if !w.r.opt.Lake {
		return Report{At: time.Now().UTC(), OK: true, Cut: cut, Checks: []CheckResult{},
			Skipped: "the lake is off (CAIRN_LAKE=off): there is nothing to compare with"}, nil
	}
	// Every event applied from the stream must be in the lake first.
	deadline := time.Now().Add(w.r.opt.LakeWait)
	for {
		held, err := lakeHolds(ctx, w.conn, v.Stream)
		if err != nil {
			return Report{}, err
		}
		if held >= v.StreamSeq {
			break
		}
		if time.Now().After(deadline) {
			return Report{}, fmt.Errorf("projection %s v%d: the lake holds %s up to sequence %d after %s, not %d: is the relay moving events into it?",
				w.s.Name, w.s.Version, v.Stream, held, w.r.opt.LakeWait, v.StreamSeq)
		}
		if !sleepCtx(ctx, 200*time.Millisecond) {
			return Report{}, ctx.Err()
		}
	}
	rep, err := runChecks(ctx, w.conn, w.s, w.t, cut)
	if err != nil || rep.OK {
		return rep, err
	}
	// An event the version applied may have entered the lake a moment
	// after the lake's head said so (a publish the relay reordered):
	// compare once more before calling the version wrong.
	w.log.Warn("verification found differences; comparing once more", "report", rep.Describe())
	if !sleepCtx(ctx, w.r.opt.RecheckAfter) {
		return rep, ctx.Err()
	}
	return runChecks(ctx, w.conn, w.s, w.t, cut)
}

func (w *worker) saveReport(ctx context.Context, rep Report) error {
	st := w.base()
	st.then = []queued{{sql: `UPDATE projection.versions SET verification = $3, updated_at = clock_timestamp() WHERE name = $1 AND version = $2`,
		args: []any{w.s.Name, w.s.Version, rep}}}
	if err := st.run(ctx, w.conn); err != nil {
		return fmt.Errorf("projection %s v%d: keep the verification report: %w", w.s.Name, w.s.Version, err)
	}
	return nil
}

// switchLive makes the version the live one in one transaction, if no
// version as new or newer is live (an older binary never takes queries
// back: its version is built and kept as retired, for a rollback).
func (w *worker) switchLive(ctx context.Context) error {
	st := w.base()
	st.durable = true
	st.then = []queued{{sql: switchSQL, args: []any{w.s.Name, w.s.Version}}}
	if err := st.run(ctx, w.conn); err != nil {
		return fmt.Errorf("projection %s v%d: switch queries to it: %w", w.s.Name, w.s.Version, err)
	}
	v, err := loadVersion(ctx, w.conn, w.s.Name, w.s.Version)
	if err != nil {
		return err
	}
	if v.State == Live {
		w.log.Info("the new version is live", "stream_seq", v.StreamSeq)
		w.dropOld(ctx)
	} else {
		w.log.Info("built and verified, kept for a rollback: a newer version is live")
	}
	return nil
}

// dropOld drops the versions neither live nor kept for a rollback.
func (w *worker) dropOld(ctx context.Context) {
	ptr, err := loadPointer(ctx, w.conn, w.s.Name)
	if err != nil || ptr.Live == nil {
		return
	}
	versions, err := listVersions(ctx, w.conn, w.s.Name)
	if err != nil {
		w.log.Warn("cannot list versions to drop", "err", err)
		return
	}
	for _, o := range versions {
		keep := o.Version >= *ptr.Live || (ptr.Previous != nil && o.Version == *ptr.Previous) ||
			(o.State != Retired && o.State != Failed)
		if keep {
			continue
		}
		st := w.base()
		st.then = []queued{{sql: `SET LOCAL lock_timeout = '2s'`}}
		for _, t := range o.Tables {
			st.then = append(st.then, queued{sql: `DROP TABLE IF EXISTS ` + pgx.Identifier(splitName(t)).Sanitize()})
		}
		st.then = append(st.then, queued{sql: `DELETE FROM projection.versions WHERE name = $1 AND version = $2`, args: []any{o.Name, o.Version}})
		if err := st.run(ctx, w.conn); err != nil {
			w.log.Warn("cannot drop an old version; it stays until the next switch", "old_version", o.Version, "err", err)
			continue
		}
		w.log.Info("dropped an old version", "old_version", o.Version)
	}
}

// follow feeds a live or retired version from the stream, moving its
// covered lake position on, until its state changes or the term ends.
func (w *worker) follow(ctx context.Context, v Version) error {
	if err := w.openFeed(ctx, uint64(v.StreamSeq)+1); err != nil {
		return err
	}
	next := time.Now().Add(w.r.opt.CoverEvery)
	for ctx.Err() == nil {
		if _, _, err := w.applyNext(ctx, 250*time.Millisecond); err != nil {
			return err
		}
		if time.Now().Before(next) {
			continue
		}
		next = time.Now().Add(w.r.opt.CoverEvery)
		cur, err := loadVersion(ctx, w.conn, w.s.Name, w.s.Version)
		if err != nil {
			return err
		}
		if cur.State != v.State {
			return nil
		}
		if _, err := w.conn.Exec(ctx, advanceCoveredSQL, w.s.Name, w.s.Version, cur.CoveredPosition, cur.Stream,
			cur.StreamSeq, coverWindow, w.s.Events); err != nil {
			return fmt.Errorf("projection %s v%d: move its lake position on: %w", w.s.Name, w.s.Version, err)
		}
	}
	return nil
}

// deferred reports whether a Create statement is a plain index, made once
// the lake phase is over (in the hand-over's transaction) rather than
// kept up row by row through the whole build. Unique indexes are made at
// once: the apply statements' ON CONFLICT may need them.
func deferred(q string) bool {
	q = strings.ToUpper(strings.TrimSpace(q))
	return strings.HasPrefix(q, "CREATE INDEX")
}

// splitName splits schema.table for quoting.
func splitName(phys string) []string {
	for i := range len(phys) {
		if phys[i] == '.' {
			return []string{phys[:i], phys[i+1:]}
		}
	}
	return []string{phys}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
