package customers

import (
	"time"

	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/outbox"
)

// The customers module's events, the contract with its consumers. Key =
// customer id, so a consumer sees one customer's credit change in order.
// Credit is reserved and released by choreography: this module reacts to
// the orders module's events on its own; nobody commands it.
var (
	EventCustomerCreated = outbox.Declare[CustomerCreated](outbox.EventSpec{
		Type: "customers.customer_created.v1", Visibility: outbox.Public,
		Description: "A customer was registered with a credit limit.",
	})
	// EventCreditReserved answers an orders.order_placed.v1 whose total the
	// customer's available credit covered.
	EventCreditReserved = outbox.Declare[CreditDecision](outbox.EventSpec{
		Type: "customers.credit_reserved.v1", Visibility: outbox.Public,
		Description: "Credit was reserved for an order.",
	})
	// EventCreditLimitExceeded answers an orders.order_placed.v1 whose total
	// it did not cover (or in another currency than the credit limit's).
	EventCreditLimitExceeded = outbox.Declare[CreditDecision](outbox.EventSpec{
		Type: "customers.credit_limit_exceeded.v1", Visibility: outbox.Public,
		Description: "An order's total exceeded the customer's available credit; nothing was reserved.",
	})
	// EventCreditReleased follows the rejection or cancellation of an
	// order that held credit.
	EventCreditReleased = outbox.Declare[CreditDecision](outbox.EventSpec{
		Type: "customers.credit_released.v1", Visibility: outbox.Public,
		Description: "Credit reserved for an order was given back after the order was rejected or cancelled.",
	})
)

// CustomerCreated is the data of customers.customer_created.v1.
type CustomerCreated struct {
	CustomerID  string        `json:"customer_id"`
	Name        string        `json:"name" cairn:"personal"`
	CreditLimit modules.Money `json:"credit_limit"`
	CreatedAt   time.Time     `json:"created_at"`
}

// CreditDecision is the data of the credit events: the order, the amount
// reserved, refused or released, and the customer's available credit
// after the decision.
type CreditDecision struct {
	CustomerID string        `json:"customer_id"`
	OrderID    string        `json:"order_id"`
	Amount     modules.Money `json:"amount"`
	Available  modules.Money `json:"available"`
}

// orderPlaced is the orders module's orders.order_placed.v1, named rather
// than imported: customers reacts to orders, orders never commands it.
var orderPlaced = outbox.Named[orderPlacedData]("orders.order_placed.v1", outbox.Public)

type orderPlacedData struct {
	OrderID    string        `json:"order_id"`
	CustomerID string        `json:"customer_id"`
	Total      modules.Money `json:"total"`
}

// An order's rejection or cancellation: whatever credit it holds goes back.
var (
	orderRejected  = outbox.Named[orderClosedData]("orders.order_rejected.v1", outbox.Public)
	orderCancelled = outbox.Named[orderClosedData]("orders.order_cancelled.v1", outbox.Public)
)

type orderClosedData struct {
	OrderID    string `json:"order_id"`
	CustomerID string `json:"customer_id"`
}
