package customers

import (
	"time"

	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/outbox/lake"
)

// customerState is a customer as the lake folds it from the module's
// events (GET /api/v1/lake/subjects/<id>/state): what GET
// /api/v1/customers/<id> answers, with reserved credit spelled out and the
// reservations oldest first. An order closed before its placement arrived
// (status closed in the module) is not there: it never held credit, and no
// event announces it.
type customerState struct {
	Name            string             `json:"name"`
	CreditLimit     modules.Money      `json:"credit_limit"`
	ReservedCredit  modules.Money      `json:"reserved_credit"`
	AvailableCredit modules.Money      `json:"available_credit"`
	CreatedAt       time.Time          `json:"created_at"`
	Reservations    []reservationState `json:"reservations"`
	byOrder         map[string]int     // index in Reservations
}

type reservationState struct {
	OrderID string        `json:"order_id"`
	Amount  modules.Money `json:"amount"`
	Status  string        `json:"status"`
}

// registerFold tells the lake how a customer's credit follows from its
// events. It sums the amounts reserved and released rather than copying
// the available credit each event carries, so the fold checks the module's
// arithmetic.
func registerFold(f *lake.Folds) error {
	return lake.Fold(f, "customers.customer",
		lake.On(EventCustomerCreated, func(s *customerState, _ lake.Event, d CustomerCreated) {
			zero := modules.Money{Currency: d.CreditLimit.Currency}
			*s = customerState{Name: d.Name, CreditLimit: d.CreditLimit, ReservedCredit: zero, AvailableCredit: d.CreditLimit,
				CreatedAt: d.CreatedAt, Reservations: []reservationState{}, byOrder: map[string]int{}}
		}),
		lake.On(EventCreditReserved, func(s *customerState, _ lake.Event, d CreditDecision) {
			s.ReservedCredit.Amount += d.Amount.Amount
			s.reservation(d.OrderID, d.Amount, "reserved")
		}),
		lake.On(EventCreditLimitExceeded, func(s *customerState, _ lake.Event, d CreditDecision) {
			s.reservation(d.OrderID, modules.Money{Amount: max(d.Amount.Amount, 0), Currency: s.CreditLimit.Currency}, "refused")
		}),
		lake.On(EventCreditReleased, func(s *customerState, _ lake.Event, d CreditDecision) {
			s.ReservedCredit.Amount -= d.Amount.Amount
			s.reservation(d.OrderID, d.Amount, "released")
		}),
	)
}

// reservation records what an order holds now, and the credit left.
func (s *customerState) reservation(order string, amount modules.Money, status string) {
	s.AvailableCredit.Amount = s.CreditLimit.Amount - s.ReservedCredit.Amount
	if s.byOrder == nil {
		s.byOrder = map[string]int{}
	}
	if i, ok := s.byOrder[order]; ok {
		s.Reservations[i].Status = status
		return
	}
	s.byOrder[order] = len(s.Reservations)
	s.Reservations = append(s.Reservations, reservationState{OrderID: order, Amount: amount, Status: status})
}
