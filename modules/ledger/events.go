package ledger

import "time"

// The ledger's public events: the contract with every consumer. A breaking
// change is a new version. Key = account id, so a consumer sees one
// account's events in version order.
const (
	EventAccountOpened = "ledger.account_opened.v1"
	EventDeposited     = "ledger.deposited.v1"
	EventWithdrawn     = "ledger.withdrawn.v1"
)

// AccountOpened is the data of ledger.account_opened.v1.
type AccountOpened struct {
	AccountID  string    `json:"account_id"`
	Owner      string    `json:"owner"`
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
