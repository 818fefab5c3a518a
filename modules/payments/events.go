package payments

import (
	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/outbox"
)

// The commands payments carries out: internal events this module declares
// as its contract; the sender (the orders module's fulfilment saga)
// imports this package to send them. The payment id is the sender's choice
// (the saga uses the order id) and is the idempotency key at the gateway:
// one payment id is authorised at most once, however often it is asked.
// Key = payment id.
var (
	CommandAuthorizePayment = outbox.Declare[AuthorizePayment](outbox.EventSpec{
		Type: "payments.authorize_payment.v1", Visibility: outbox.Internal,
		Description: "Command: authorise this amount at the payment gateway under this payment id.",
	})
	CommandVoidPayment = outbox.Declare[PaymentRef](outbox.EventSpec{
		Type: "payments.void_payment.v1", Visibility: outbox.Internal,
		Description: "Command: void the authorisation of this payment id, if any.",
	})
)

// The replies, public, keyed by payment id.
var (
	EventPaymentAuthorized = outbox.Declare[PaymentResult](outbox.EventSpec{
		Type: "payments.payment_authorized.v1", Visibility: outbox.Public,
		Description: "The gateway authorised a payment.",
	})
	EventPaymentDeclined = outbox.Declare[PaymentResult](outbox.EventSpec{
		Type: "payments.payment_declined.v1", Visibility: outbox.Public,
		Description: "The gateway declined a payment; nothing is held.",
	})
	EventPaymentVoided = outbox.Declare[PaymentResult](outbox.EventSpec{
		Type: "payments.payment_voided.v1", Visibility: outbox.Public,
		Description: "A payment's authorisation was voided at the gateway (or there was none to void).",
	})
)

// AuthorizePayment is the data of payments.authorize_payment.v1.
type AuthorizePayment struct {
	PaymentID string        `json:"payment_id"`
	Amount    modules.Money `json:"amount"`
}

// PaymentRef is the data of payments.void_payment.v1.
type PaymentRef struct {
	PaymentID string `json:"payment_id"`
}

// PaymentResult is the data of the replies. AuthorizationID is the
// gateway's; Reason says why a payment was declined.
type PaymentResult struct {
	PaymentID       string        `json:"payment_id"`
	Amount          modules.Money `json:"amount"`
	AuthorizationID string        `json:"authorization_id"`
	Reason          string        `json:"reason,omitempty"`
}
