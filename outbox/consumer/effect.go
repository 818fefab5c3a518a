package consumer

import (
	"context"
	"fmt"

	"github.com/cairn-dev/cairn/outbox"
)

// effectResult keeps what a subscription's Effect returned within one
// delivery, so that when only the transaction that records it fails, the
// retry records it without calling the outside system again.
type effectResult struct {
	done   bool
	result any
}

// runEffect runs s.Effect for d unless it succeeded already in this
// delivery, with no transaction open and no connection held, and puts its
// result in d. It checks the term right before: a replica whose term is
// over must not act outside.
func (r *Runtime) runEffect(ctx context.Context, s outbox.Subscription, d *outbox.Delivery, eff *effectResult) error {
	if eff == nil {
		eff = &effectResult{}
	}
	if !eff.done {
		if d.CheckTerm() != nil {
			return errFenced
		}
		res, err := callEffect(ctx, s.Effect, r, *d)
		if err != nil {
			return err
		}
		eff.done, eff.result = true, res
	}
	d.EffectResult = eff.result
	return nil
}

// callEffect turns an effect's panic into an error, as callHandler does.
func callEffect(ctx context.Context, e outbox.Effect, r *Runtime, d outbox.Delivery) (res any, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("effect panicked: %v", p)
		}
	}()
	return e(ctx, r.db, d)
}
