package ledger

import (
	"time"

	"github.com/cairn-dev/cairn/outbox"
)

// The ledger's public events: the contract with every consumer. A breaking
// change is a new version. Key = account id, so a consumer sees one
// account's events in version order.
var (
	EventAccountOpened = outbox.Declare[AccountOpened](outbox.EventSpec{
		Type: "ledger.account_opened.v1", Visibility: outbox.Public,
		Description: "An account was opened with a zero balance at version 0.",
	})
	EventDeposited = outbox.Declare[Moved](outbox.EventSpec{
		Type: "ledger.deposited.v1", Visibility: outbox.Public,
		Description: "Money was paid into an account.",
	})
	EventWithdrawn = outbox.Declare[Moved](outbox.EventSpec{
		Type: "ledger.withdrawn.v1", Visibility: outbox.Public,
		Description: "Money was taken out of an account.",
	})
)

// AccountOpened is the data of ledger.account_opened.v1.
type AccountOpened struct {
	AccountID  string    `json:"account_id"`
	Owner      string    `json:"owner" cairn:"personal"`
	Currency   string    `json:"currency"`
	Balance    int64     `json:"balance"`
	Version    int64     `json:"version"`
	OccurredAt time.Time `json:"occurred_at"`
}

// Moved is the data of ledger.deposited.v1 and ledger.withdrawn.v1. Money
// is in minor units of Currency.
type Moved struct {
	AccountID  string    `json:"account_id"`
	Amount     int64     `json:"amount"`
	Currency   string    `json:"currency"`
	Balance    int64     `json:"balance"`
	Version    int64     `json:"version"`
	OccurredAt time.Time `json:"occurred_at"`
}
