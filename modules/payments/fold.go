package payments

import (
	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/outbox/lake"
)

// paymentState is a payment as the lake folds it from the module's events:
// what GET /api/v1/payments/<id> answers but its update time. The saga
// uses the order's id as the payment's, so ask the lake for
// GET /api/v1/lake/subjects/<id>/state?type=payments.payment: without the
// type it folds the order.
type paymentState struct {
	Amount          modules.Money `json:"amount"`
	Status          string        `json:"status"`
	AuthorizationID string        `json:"authorization_id"`
	Reason          string        `json:"reason,omitempty"`
}

// registerFold tells the lake how a payment's state follows from its
// events, as recordAuthorize and recordVoid record it: a void answered for
// a declined payment leaves it declined; a void with no authorisation
// before it records the payment voided, for nothing.
func registerFold(f *lake.Folds) error {
	return lake.Fold(f, "payments.payment",
		lake.On(EventPaymentAuthorized, func(s *paymentState, _ lake.Event, d PaymentResult) {
			*s = paymentState{Amount: d.Amount, Status: StatusAuthorized, AuthorizationID: d.AuthorizationID}
		}),
		lake.On(EventPaymentDeclined, func(s *paymentState, _ lake.Event, d PaymentResult) {
			*s = paymentState{Amount: d.Amount, Status: StatusDeclined, AuthorizationID: d.AuthorizationID, Reason: d.Reason}
		}),
		lake.On(EventPaymentVoided, func(s *paymentState, _ lake.Event, d PaymentResult) {
			switch s.Status {
			case "":
				*s = paymentState{Amount: d.Amount, Status: StatusVoided, AuthorizationID: d.AuthorizationID}
			case StatusAuthorized:
				s.Status = StatusVoided
			}
		}),
	)
}
