package orders

import (
	"time"

	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/outbox/lake"
)

// orderState is an order as the lake folds it from the module's events
// (GET /api/v1/lake/subjects/<id>/state?type=orders.order; the type may be
// left out, as the order's placement is the first event of its id): what
// GET /api/v1/orders/<id> answers but its history, whose causes and
// times are the module's own records.
type orderState struct {
	CustomerID      string        `json:"customer_id"`
	Lines           []Line        `json:"lines"`
	Total           modules.Money `json:"total"`
	Status          string        `json:"status"`
	Reason          string        `json:"reason,omitempty"`
	CancelRequested bool          `json:"cancel_requested,omitempty"`
	CreatedAt       time.Time     `json:"created_at"`
}

// registerFold tells the lake how an order's state follows from its events.
func registerFold(f *lake.Folds) error {
	closed := func(status string) func(*orderState, lake.Event, OrderClosed) {
		return func(s *orderState, _ lake.Event, d OrderClosed) { s.Status, s.Reason = status, d.Reason }
	}
	return lake.Fold(f, "orders.order",
		lake.On(EventOrderPlaced, func(s *orderState, _ lake.Event, d OrderPlaced) {
			*s = orderState{CustomerID: d.CustomerID, Lines: d.Lines, Total: d.Total, Status: StatusPending, CreatedAt: d.PlacedAt}
		}),
		lake.On(EventOrderApproved, closed(StatusApproved)),
		lake.On(EventOrderRejected, closed(StatusRejected)),
		lake.On(EventOrderCancelled, closed(StatusCancelled)),
		lake.On(eventCancellationRequested, func(s *orderState, _ lake.Event, _ CancellationRequested) {
			s.CancelRequested = true
		}),
	)
}
