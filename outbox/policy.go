package outbox

import (
	"context"
	"fmt"
	"reflect"
	"time"

	"github.com/jackc/pgx/v5"
)

// ReplayPolicy says what a replay may do with a subscription's handler
// (outbox/replay). Every subscription declares one; start-up refuses one
// that does not (CheckPolicies).
type ReplayPolicy string

// The three policies.
const (
	// Rebuildable: a projection or read model. Its handler may run again
	// over history, after its Reset cleared what it keeps.
	Rebuildable ReplayPolicy = "rebuildable"
	// Effectful: it calls the outside world (an email, a payment). It may
	// be replayed only as a dry run: its outside calls (Outside) are
	// recorded instead of made, and its database changes rolled back.
	Effectful ReplayPolicy = "effectful"
	// Never: a saga or a participant whose handlers issue commands or
	// events that a process waits for; replaying it would issue them
	// again, so every replay is refused.
	Never ReplayPolicy = "never"
)

// ResetFunc clears, in tx, what a rebuildable handler keeps (its own rows),
// before a rebuild runs the handler over history again.
type ResetFunc func(ctx context.Context, tx pgx.Tx) error

// BatchHandler handles a run of events in one transaction; the runtime's
// undecoded form of ReplayBatch's function.
type BatchHandler func(ctx context.Context, tx pgx.Tx, ds []Delivery) error

// RebuildableWith declares the subscription rebuildable: reset clears its
// state (nil when there is nothing to clear because the handler's writes
// are idempotent and converge whatever they replay over, such as an
// upsert where the newest version wins).
func RebuildableWith(reset ResetFunc) Option {
	return func(s *Subscription) { s.Replay, s.Reset = Rebuildable, reset }
}

// EffectfulReplay declares the subscription effectful: replayed only as a
// dry run, in which every call made through Outside is recorded instead.
func EffectfulReplay() Option {
	return func(s *Subscription) { s.Replay = Effectful }
}

// NeverReplay declares the subscription never replayable; why says so to
// the operator whose replay request is refused.
func NeverReplay(why string) Option {
	return func(s *Subscription) { s.Replay, s.NeverWhy = Never, why }
}

// ReplayBatch gives a rebuildable subscription a handler for runs of
// events, which replays (rebuilds and seeding) use instead of calling the
// one-event handler per event: a projection that writes a batch in one
// statement rebuilds many times faster. Live delivery still calls the
// one-event handler. T must be the subscription's payload type (Handle
// checks).
func ReplayBatch[T any](fn func(ctx context.Context, tx pgx.Tx, es []Received[T]) error) Option {
	return func(s *Subscription) {
		s.batchType = reflect.TypeFor[T]()
		s.Batch = func(ctx context.Context, tx pgx.Tx, ds []Delivery) error {
			rs := make([]Received[T], len(ds))
			for i, d := range ds {
				r, err := received[T](d)
				if err != nil {
					return err
				}
				rs[i] = r
			}
			return fn(ctx, tx, rs)
		}
	}
}

// Start is where a new subscription's consumer begins when it is first
// deployed: now (the default), the beginning of history, or a time. One
// that starts in the past is seeded from the lake, then follows the live
// stream from where the lake ended (outbox/replay).
type Start struct {
	from int // 0 now, 1 beginning, 2 at
	at   time.Time
}

// The starts that need no time.
var (
	// FromNow: the live stream only, as the durable consumer finds it when
	// it is first created (every message the stream still holds).
	FromNow = Start{}
	// FromBeginning: every event of the subscription's types the lake
	// holds, then the live stream.
	FromBeginning = Start{from: 1}
)

// FromTime starts at the events appended at or after t (their CloudEvents
// time), from the lake, then the live stream.
func FromTime(t time.Time) Start { return Start{from: 2, at: t.UTC()} }

// Past reports whether the start is seeded from the lake.
func (s Start) Past() bool { return s.from != 0 }

// Time is the time of FromTime; zero otherwise.
func (s Start) Time() time.Time { return s.at }

// String is "now", "beginning" or the time in RFC 3339.
func (s Start) String() string {
	switch s.from {
	case 1:
		return "beginning"
	case 2:
		return s.at.Format(time.RFC3339Nano)
	}
	return "now"
}

// StartFrom sets where a new consumer begins; a start in the past needs a
// rebuildable policy (its seeding is a rebuild from nothing).
func StartFrom(s Start) Option { return func(sub *Subscription) { sub.Start = s } }

// checkPolicy reports what is wrong with a subscription's replay
// declarations; an unset policy is not wrong here (CheckPolicies).
func (s Subscription) checkPolicy() error {
	switch s.Replay {
	case "", Rebuildable, Effectful:
	case Never:
		if s.NeverWhy == "" {
			return fmt.Errorf("outbox: consumer %s: NeverReplay needs a reason for the operator", s.Consumer)
		}
	default:
		return fmt.Errorf("outbox: consumer %s: unknown replay policy %q", s.Consumer, s.Replay)
	}
	switch {
	case s.Effect != nil && s.Replay == Rebuildable:
		return fmt.Errorf("outbox: consumer %s calls the outside world (HandleEffect), so it cannot be rebuildable: declare EffectfulReplay()", s.Consumer)
	case s.Start.Past() && s.Replay != Rebuildable:
		return fmt.Errorf("outbox: consumer %s starts from %s, which seeds it from the lake like a rebuild: declare it RebuildableWith(reset)", s.Consumer, s.Start)
	case s.Batch != nil && s.Replay != Rebuildable:
		return fmt.Errorf("outbox: consumer %s: ReplayBatch is for rebuildable consumers", s.Consumer)
	}
	return nil
}

// CheckPolicies returns an error naming every subscription that declares
// no replay policy: start-up refuses to run them (a replay must know
// whether it may rebuild, only preview, or never touch a consumer).
func CheckPolicies(subs []Subscription) error {
	var missing []string
	for _, s := range subs {
		if s.Replay == "" {
			missing = append(missing, s.Consumer)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("consumers without a replay policy: %v: declare outbox.RebuildableWith(reset), outbox.EffectfulReplay() or outbox.NeverReplay(why) on each", missing)
	}
	return nil
}
