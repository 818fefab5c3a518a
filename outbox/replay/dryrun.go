package replay

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/outbox"
)

// Effect is one would-be effect of a dry run: an outside call it recorded
// instead of making, or a handler failure ("handler_failed").
type Effect struct {
	EventID  string          `json:"event_id"`
	Position int64           `json:"position"`
	Effect   string          `json:"effect"`
	Detail   json.RawMessage `json:"detail"`
}

// DryRun runs sub's effect (if any) and handler over the events of rng as
// they would run live, except that every outside call made through
// outbox.Outside is recorded instead of made (record gets them after each
// batch) and every database change is rolled back. An event whose handler
// fails is recorded as a handler_failed effect and the run goes on. It
// reads up to the lake's head when it starts. Errors: ctx's, record's, the
// database's.
func DryRun(ctx context.Context, env Env, sub outbox.Subscription, rng Range, record func(context.Context, []Effect) error) (Progress, error) {
	x := newExec(ctx, env, sub)
	h, err := readHead(ctx, env.DB)
	if err != nil {
		return x.p, err
	}
	rd := newReader(env.DB, sub, rng)
	_, err = rd.pages(ctx, 0, h.Position, func(evs []Event) error {
		effects, err := x.dryBatch(ctx, evs)
		if err != nil {
			return err
		}
		if len(effects) > 0 {
			if err := record(ctx, effects); err != nil {
				return err
			}
		}
		x.progress(evs)
		return nil
	})
	return x.p, err
}

var errRollback = errors.New("replay: dry run: rolled back")

// dryBatch runs a page in one transaction that is rolled back, each event
// in a savepoint of its own so that one failure does not undo the others'
// view of the state.
func (x *exec) dryBatch(ctx context.Context, evs []Event) ([]Effect, error) {
	rec := &outbox.EffectRecorder{}
	dctx := outbox.WithDryRun(ctx, rec)
	var out []Effect
	err := pgx.BeginFunc(ctx, x.env.DB, func(tx pgx.Tx) error {
		for _, e := range evs {
			d := x.delivery(e)
			herr := pgx.BeginFunc(dctx, tx, func(sp pgx.Tx) error {
				if x.sub.Effect != nil {
					res, err := callEffect(dctx, x.sub.Effect, x.env.DB, d)
					if err != nil {
						return err
					}
					d.EffectResult = res
				}
				return callHandler(dctx, x.sub.Handle, sp, d)
			})
			if ctx.Err() != nil {
				return ctx.Err()
			}
			for _, r := range rec.Take() {
				out = append(out, Effect{EventID: e.ID, Position: e.Position, Effect: r.Effect, Detail: r.Detail})
				x.p.Effects++
			}
			x.p.Processed++
			if herr != nil {
				x.p.Failed++
				detail, _ := json.Marshal(map[string]string{"error": herr.Error()})
				out = append(out, Effect{EventID: e.ID, Position: e.Position, Effect: "handler_failed", Detail: detail})
			}
		}
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		return nil, err
	}
	return out, nil
}
