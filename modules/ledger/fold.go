package ledger

import (
	"github.com/cairn-dev/cairn/outbox/lake"
)

// accountState is an account as the lake folds it from the module's events
// (GET /api/v1/lake/subjects/:id/state): the same balance and version as
// GET /api/v1/accounts/:id?as_of=, read from the lake instead of the log.
type accountState struct {
	Owner    string `json:"owner"`
	Currency string `json:"currency"`
	Balance  int64  `json:"balance"`
	Version  int64  `json:"version"`
}

// registerFold tells the lake how an account's state follows from its
// events. It sums the amounts rather than copying the balance each event
// carries, so the fold checks the log's arithmetic instead of trusting it.
func registerFold(f *lake.Folds) error {
	return lake.Fold(f, "ledger.account",
		lake.On(EventAccountOpened, func(s *accountState, _ lake.Event, d AccountOpened) {
			s.Owner, s.Currency, s.Balance, s.Version = d.Owner, d.Currency, d.Balance, d.Version
		}),
		lake.On(EventDeposited, func(s *accountState, _ lake.Event, d Moved) {
			s.Balance, s.Version = s.Balance+d.Amount, d.Version
		}),
		lake.On(EventWithdrawn, func(s *accountState, _ lake.Event, d Moved) {
			s.Balance, s.Version = s.Balance-d.Amount, d.Version
		}),
	)
}
