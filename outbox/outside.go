package outbox

import (
	"context"
	"encoding/json"
	"sync"
)

// An effectful handler (HandleEffect) makes its outside call (the email
// handed to SMTP, the payment authorised) through Outside. Live, Outside
// just calls. In a dry run (outbox/replay) the runtime puts a recorder in
// the context, and Outside records what the call would have done instead:
// the effect's name and the detail the module chose to show an operator
// (an email's recipient and subject, never its token). That is the
// "gateway that knows live from replay": the module's port is swapped for
// a recorder at the one place it is called.

// RecordedEffect is one call a dry run did not make.
type RecordedEffect struct {
	Effect string          `json:"effect"`
	Detail json.RawMessage `json:"detail"`
}

// EffectRecorder collects the effects of a dry run. Safe for concurrent
// use.
type EffectRecorder struct {
	mu  sync.Mutex
	out []RecordedEffect
}

// Take returns what was recorded since the last Take and forgets it.
func (r *EffectRecorder) Take() []RecordedEffect {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.out
	r.out = nil
	return out
}

func (r *EffectRecorder) record(effect string, detail any) error {
	raw, err := json.Marshal(detail)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.out = append(r.out, RecordedEffect{Effect: effect, Detail: raw})
	return nil
}

type recorderKey struct{}

// WithDryRun returns a context in which Outside records into rec instead
// of calling out. The replay runtime sets it; a module never does.
func WithDryRun(ctx context.Context, rec *EffectRecorder) context.Context {
	return context.WithValue(ctx, recorderKey{}, rec)
}

// DryRun reports whether ctx is a dry run's: Outside calls nothing. A
// handler may use it to look past what only matters live (mail renders an
// email again although its record says it was sent).
func DryRun(ctx context.Context) bool {
	_, ok := ctx.Value(recorderKey{}).(*EffectRecorder)
	return ok
}

// Outside makes an effect's outside call: call(ctx), unless ctx is a dry
// run's, in which case it records effect (a short name, "email") and detail
// (a JSON-encodable value an operator may read: no secret) and returns O's
// zero value without calling. Every outside call of an effectful handler
// must go through it, or a dry run would make it. Errors: call's, or in a
// dry run a detail that does not encode.
func Outside[O any](ctx context.Context, effect string, detail any, call func(context.Context) (O, error)) (O, error) {
	if rec, ok := ctx.Value(recorderKey{}).(*EffectRecorder); ok {
		var zero O
		return zero, rec.record(effect, detail)
	}
	return call(ctx)
}
