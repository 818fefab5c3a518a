package orders

import (
	"time"

	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/outbox"
)

// The orders module's events. Key = order id. The customers module reacts
// to them on its own (choreography): it reserves credit on order_placed and
// releases it on order_rejected and order_cancelled, which are therefore
// published only once the order's stock and payment are given back.
var (
	EventOrderPlaced = outbox.Declare[OrderPlaced](outbox.EventSpec{
		Type: "orders.order_placed.v1", Visibility: outbox.Public,
		Description: "An order was placed; it is pending until credit, stock and payment are secured.",
	})
	EventOrderApproved = outbox.Declare[OrderClosed](outbox.EventSpec{
		Type: "orders.order_approved.v1", Visibility: outbox.Public,
		Description: "An order's credit, stock and payment are secured; it is accepted.",
	})
	EventOrderRejected = outbox.Declare[OrderClosed](outbox.EventSpec{
		Type: "orders.order_rejected.v1", Visibility: outbox.Public,
		Description: "An order was rejected; its stock and payment are given back, its credit is to be released.",
	})
	EventOrderCancelled = outbox.Declare[OrderClosed](outbox.EventSpec{
		Type: "orders.order_cancelled.v1", Visibility: outbox.Public,
		Description: "An order was cancelled; its stock and payment are given back, its credit is to be released.",
	})
	// eventCancellationRequested carries a customer's cancel from the API
	// to the order's fulfilment saga.
	eventCancellationRequested = outbox.Declare[CancellationRequested](outbox.EventSpec{
		Type: "orders.cancellation_requested.v1", Visibility: outbox.Internal,
		Description: "A customer asked to cancel a pending or approved order.",
	})
)

// OrderPlaced is the data of orders.order_placed.v1.
type OrderPlaced struct {
	OrderID    string        `json:"order_id"`
	CustomerID string        `json:"customer_id"`
	Lines      []Line        `json:"lines"`
	Total      modules.Money `json:"total"`
	PlacedAt   time.Time     `json:"placed_at"`
}

// Line is one line of an order, priced.
type Line struct {
	SKU       string        `json:"sku"`
	Quantity  int64         `json:"quantity"`
	UnitPrice modules.Money `json:"unit_price"`
}

// OrderClosed is the data of order_approved, order_rejected and
// order_cancelled; Reason is empty for approved.
type OrderClosed struct {
	OrderID    string        `json:"order_id"`
	CustomerID string        `json:"customer_id"`
	Total      modules.Money `json:"total"`
	Reason     string        `json:"reason,omitempty"`
}

// CancellationRequested is the data of orders.cancellation_requested.v1.
type CancellationRequested struct {
	OrderID string `json:"order_id"`
}

// The customers module's events orders reads, named rather than imported:
// customers reacts to orders on its own, and orders only listens.
var (
	customerCreated     = outbox.Named[customerCreatedData]("customers.customer_created.v1", outbox.Public)
	creditReserved      = outbox.Named[creditDecision]("customers.credit_reserved.v1", outbox.Public)
	creditLimitExceeded = outbox.Named[creditDecision]("customers.credit_limit_exceeded.v1", outbox.Public)
)

type customerCreatedData struct {
	CustomerID  string        `json:"customer_id"`
	CreditLimit modules.Money `json:"credit_limit"`
}

type creditDecision struct {
	CustomerID string `json:"customer_id"`
	OrderID    string `json:"order_id"`
}
