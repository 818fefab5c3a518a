package payments

import (
	"context"

	"github.com/cairn-dev/cairn/modules"
)

// Gateway is the outside payment gateway. Both calls are idempotent by
// key: a repeated Authorize returns the first answer and authorises
// nothing new; Void of a key with no authorisation succeeds, doing
// nothing. Errors wrapped with outbox.Unavailable mean the gateway is down
// (retry later, in order); any other error means it refused the call.
type Gateway interface {
	Authorize(ctx context.Context, key string, amount modules.Money) (Answer, error)
	Void(ctx context.Context, key string) (Answer, error)
}

// Answer is the gateway's answer about one key.
type Answer struct {
	// Status is authorized, declined or voided (an Authorize of a key
	// voided since answers voided).
	Status string
	// ID is the gateway's id of the authorisation.
	ID string
	// Reason says why it declined.
	Reason string
}

// The statuses of an answer.
const (
	StatusAuthorized = "authorized"
	StatusDeclined   = "declined"
	StatusVoided     = "voided"
)

// Simulated is the gateway of `make run` (CAIRN_PAYMENTS_URL empty): it
// authorises every amount up to DeclineAbove minor units and declines the
// rest, keeps nothing and never fails. Its answers depend on the key and
// the amount only, so a repeat gets the same answer.
type Simulated struct{ DeclineAbove int64 }

// Authorize answers authorized up to DeclineAbove, declined above.
func (g Simulated) Authorize(_ context.Context, key string, amount modules.Money) (Answer, error) {
	if amount.Amount > g.DeclineAbove {
		return Answer{Status: StatusDeclined, ID: "sim_" + key, Reason: "amount above the simulated gateway's limit"}, nil
	}
	return Answer{Status: StatusAuthorized, ID: "sim_" + key}, nil
}

// Void always succeeds.
func (Simulated) Void(_ context.Context, key string) (Answer, error) {
	return Answer{Status: StatusVoided, ID: "sim_" + key}, nil
}
