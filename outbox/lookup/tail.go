package lookup

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"

	"github.com/nats-io/nats.go"

	"github.com/cairn-dev/cairn/outbox"
)

// tailFilter is a NATS subject filter inside Cairn's subjects: events. or
// internal., then tokens, * for one token, > for the rest.
var tailFilter = regexp.MustCompile(`^(events|internal)(\.([a-z0-9_]+|\*))*(\.>)?$`)

// ValidTailFilter reports whether filter may be tailed: a subject filter
// under events. or internal. ("events.>", "events.ledger.*.v1").
func ValidTailFilter(filter string) bool {
	return tailFilter.MatchString(filter) && filter != "events" && filter != "internal"
}

// Tail calls fn with every event published on a subject filter matches,
// from now until ctx ends, in the order they arrive. A message that is not
// a CloudEvent is passed with only its subject. Errors: an invalid filter,
// or NATS refusing the subscription.
func Tail(ctx context.Context, nc *nats.Conn, filter string, fn func(Event)) error {
	if !ValidTailFilter(filter) {
		return fmt.Errorf("lookup: %q is not a subject filter under events or internal", filter)
	}
	ch := make(chan *nats.Msg, 256)
	sub, err := nc.ChanSubscribe(filter, ch)
	if err != nil {
		return fmt.Errorf("lookup: tail %s: %w", filter, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-ch:
			var ce outbox.CloudEvent
			_ = json.Unmarshal(m.Data, &ce)
			fn(Event{CloudEvent: ce, NATSSubject: m.Subject, Where: "live"})
		}
	}
}
