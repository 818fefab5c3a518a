package orders

import (
	"context"
	"encoding/json"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/modules/inventory"
	"github.com/cairn-dev/cairn/modules/payments"
	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/saga"
)

// SagaType is the fulfilment saga's type: /api/v1/sagas/orders_fulfilment/<order id>.
const SagaType = "orders_fulfilment"

// The fulfilment saga's states. An order waits for credit (reserved by the
// customers module on its own), then stock, then payment (commanded), and
// is approved. A failure, a timeout or a cancel gives back what was done,
// newest first: the payment is voided, the stock released, and the order's
// rejection or cancellation is published last, on which customers
// releases the credit.
const (
	stateAwaitingCredit     = "awaiting_credit"
	stateReservingStock     = "reserving_stock"
	stateAuthorizingPayment = "authorizing_payment"
	stateApproved           = "approved"
	stateVoidingPayment     = "voiding_payment"
	stateReleasingStock     = "releasing_stock"
	stateRejected           = "rejected"
	stateCancelled          = "cancelled"
)

// The saga's timers: a participant's step, and a compensation.
const (
	timerStep         = "step"
	timerCompensation = "compensation"
)

// maxCompensationAttempts is how often a compensation command is sent
// without an answer, a step timeout apart, before the saga is stuck.
const maxCompensationAttempts = 5

// fulfilmentData is a fulfilment saga's data. Credit, Stock and Payment
// say what the saga knows was done ("reserved", "authorized", ...; "late"
// for a success that came after it gave up and was compensated). Outcome
// and Reason are where a compensation leads.
type fulfilmentData struct {
	OrderID    string           `json:"order_id"`
	CustomerID string           `json:"customer_id"`
	Total      modules.Money    `json:"total"`
	Lines      []inventory.Line `json:"lines"`
	Credit     string           `json:"credit,omitempty"`
	Stock      string           `json:"stock,omitempty"`
	Payment    string           `json:"payment,omitempty"`
	Outcome    string           `json:"outcome,omitempty"`
	Reason     string           `json:"reason,omitempty"`
	Attempts   int              `json:"attempts,omitempty"`
}

type step = saga.Step[fulfilmentData]

// fulfilment is the saga and what its steps need of the module.
type fulfilment struct {
	m   *Module
	def *saga.Definition[fulfilmentData]
}

func newFulfilment(m *Module) *fulfilment {
	f := &fulfilment{m: m}
	def := saga.Define[fulfilmentData](saga.Spec{Type: SagaType, Initial: stateAwaitingCredit, States: []saga.State{
		{Name: stateAwaitingCredit}, {Name: stateReservingStock}, {Name: stateAuthorizingPayment},
		{Name: stateApproved, Final: true}, {Name: stateVoidingPayment}, {Name: stateReleasingStock},
		{Name: stateRejected, Final: true}, {Name: stateCancelled, Final: true},
	}})
	byOrder := func(e outbox.Received[creditDecision]) string { return e.Data.OrderID }
	byReservation := func(e outbox.Received[inventory.StockLines]) string { return e.Data.ReservationID }
	byPayment := func(e outbox.Received[payments.PaymentResult]) string { return e.Data.PaymentID }

	// Credit: the customers module's own reaction to the placement.
	saga.On(def, "credit_reserved", creditReserved, byOrder, map[string]saga.Handler[fulfilmentData, creditDecision]{
		stateAwaitingCredit: f.onCreditReserved,
		saga.Otherwise:      f.onLateCredit,
	})
	saga.On(def, "credit_limit_exceeded", creditLimitExceeded, byOrder, map[string]saga.Handler[fulfilmentData, creditDecision]{
		stateAwaitingCredit: f.onCreditRefused,
	})
	// Stock and payment: replies to the saga's commands.
	saga.On(def, "stock_reserved", inventory.EventStockReserved, byReservation, map[string]saga.Handler[fulfilmentData, inventory.StockLines]{
		stateReservingStock: f.onStockReserved,
		saga.Otherwise:      f.onLateStock,
	})
	saga.On(def, "stock_unavailable", inventory.EventStockUnavailable,
		func(e outbox.Received[inventory.StockUnavailable]) string { return e.Data.ReservationID },
		map[string]saga.Handler[fulfilmentData, inventory.StockUnavailable]{stateReservingStock: f.onStockUnavailable})
	saga.On(def, "stock_released", inventory.EventStockReleased, byReservation, map[string]saga.Handler[fulfilmentData, inventory.StockLines]{
		stateReleasingStock: f.onStockReleased,
	})
	saga.On(def, "payment_authorized", payments.EventPaymentAuthorized, byPayment, map[string]saga.Handler[fulfilmentData, payments.PaymentResult]{
		stateAuthorizingPayment: f.onPaymentAuthorized,
		saga.Otherwise:          f.onLatePayment,
	})
	saga.On(def, "payment_declined", payments.EventPaymentDeclined, byPayment, map[string]saga.Handler[fulfilmentData, payments.PaymentResult]{
		stateAuthorizingPayment: f.onPaymentDeclined,
	})
	saga.On(def, "payment_voided", payments.EventPaymentVoided, byPayment, map[string]saga.Handler[fulfilmentData, payments.PaymentResult]{
		stateVoidingPayment: f.onPaymentVoided,
	})
	// The customer's cancel, from the API.
	cancel := f.onCancel
	saga.On(def, "cancellation_requested", eventCancellationRequested,
		func(e outbox.Received[CancellationRequested]) string { return e.Data.OrderID },
		map[string]saga.Handler[fulfilmentData, CancellationRequested]{
			stateAwaitingCredit: cancel, stateReservingStock: cancel, stateAuthorizingPayment: cancel, stateApproved: cancel,
		})
	saga.OnTimer(def, timerStep, f.onStepTimeout)
	saga.OnTimer(def, timerCompensation, f.onCompensationTimeout)
	saga.OnRetry(def, f.onRetry)
	f.def = def
	return f
}

// start stores a new order and begins its saga, in the transaction that
// places it (one round trip): the order_placed event (which customers
// reacts to) and the credit step's timer.
func (f *fulfilment) start(ctx context.Context, tx pgx.Tx, o Order) error {
	lines := make([]inventory.Line, len(o.Lines))
	for i, l := range o.Lines {
		lines[i] = inventory.Line{SKU: l.SKU, Quantity: l.Quantity}
	}
	priced, err := json.Marshal(o.Lines)
	if err != nil {
		return err
	}
	d := fulfilmentData{OrderID: o.ID, CustomerID: o.CustomerID, Total: o.Total, Lines: lines}
	return f.def.Start(ctx, tx, o.ID, d, "orders.place_order", func(_ context.Context, s *step) error {
		s.Exec(insertSQL, o.ID, o.CustomerID, priced, o.Total.Currency, o.Total.Amount, o.CreatedAt)
		s.Send(EventOrderPlaced.New(o.ID, OrderPlaced{OrderID: o.ID, CustomerID: o.CustomerID, Lines: o.Lines, Total: o.Total, PlacedAt: o.CreatedAt}))
		s.SetTimer(timerStep, f.m.stepTimeout)
		return nil
	})
}

func (f *fulfilment) onCreditReserved(_ context.Context, s *step, _ outbox.Received[creditDecision]) error {
	s.Data.Credit = "reserved"
	s.Send(inventory.CommandReserveStock.New(s.ID(), inventory.ReserveStock{ReservationID: s.ID(), Lines: s.Data.Lines}))
	s.SetTimer(timerStep, f.m.stepTimeout)
	s.Goto(stateReservingStock)
	return nil
}

// onLateCredit: credit reserved after the saga gave up. The customers
// module gives it back on its own when it sees the order's rejection or
// cancellation, which the saga published when it gave up.
func (f *fulfilment) onLateCredit(_ context.Context, s *step, _ outbox.Received[creditDecision]) error {
	s.Data.Credit = "late"
	s.Note("late success: customers releases it on the order's " + s.State())
	return nil
}

func (f *fulfilment) onCreditRefused(ctx context.Context, s *step, e outbox.Received[creditDecision]) error {
	s.Data.Credit = "refused"
	return f.close(ctx, s, stateRejected, ReasonCreditLimitExceeded, e.Event.Type)
}

func (f *fulfilment) onStockReserved(_ context.Context, s *step, _ outbox.Received[inventory.StockLines]) error {
	s.Data.Stock = "reserved"
	s.Send(payments.CommandAuthorizePayment.New(s.ID(), payments.AuthorizePayment{PaymentID: s.ID(), Amount: s.Data.Total}))
	s.SetTimer(timerStep, f.m.stepTimeout)
	s.Goto(stateAuthorizingPayment)
	return nil
}

// onLateStock: stock reserved after the saga gave up on it (or after a
// cancel): released again at once.
func (f *fulfilment) onLateStock(_ context.Context, s *step, _ outbox.Received[inventory.StockLines]) error {
	if s.Data.Stock == "reserved" {
		s.Note("already known")
		return nil
	}
	s.Data.Stock = "late"
	s.Send(inventory.CommandReleaseStock.New(s.ID(), inventory.ReservationRef{ReservationID: s.ID()}))
	s.Note("late success: stock released")
	return nil
}

func (f *fulfilment) onStockUnavailable(ctx context.Context, s *step, e outbox.Received[inventory.StockUnavailable]) error {
	s.Data.Stock = "unavailable"
	return f.close(ctx, s, stateRejected, ReasonOutOfStock, e.Event.Type)
}

func (f *fulfilment) onPaymentAuthorized(_ context.Context, s *step, e outbox.Received[payments.PaymentResult]) error {
	s.Data.Payment = "authorized"
	s.CancelTimer(timerStep)
	s.Exec(setStatusSQL, s.ID(), StatusApproved, "", e.Event.Type)
	s.Send(
		EventOrderApproved.New(s.ID(), OrderClosed{OrderID: s.ID(), CustomerID: s.Data.CustomerID, Total: s.Data.Total}),
		inventory.CommandCommitStock.New(s.ID(), inventory.ReservationRef{ReservationID: s.ID()}),
	)
	s.Goto(stateApproved)
	return nil
}

// onLatePayment: a payment authorised after the saga gave up on it (or
// after a cancel): voided at once.
func (f *fulfilment) onLatePayment(_ context.Context, s *step, _ outbox.Received[payments.PaymentResult]) error {
	if s.Data.Payment == "authorized" {
		s.Note("already known")
		return nil
	}
	s.Data.Payment = "late"
	s.Send(payments.CommandVoidPayment.New(s.ID(), payments.PaymentRef{PaymentID: s.ID()}))
	s.Note("late success: payment voided")
	return nil
}

func (f *fulfilment) onPaymentDeclined(_ context.Context, s *step, _ outbox.Received[payments.PaymentResult]) error {
	s.Data.Payment = "declined"
	f.compensateStock(s, stateRejected, ReasonPaymentDeclined)
	return nil
}

func (f *fulfilment) onPaymentVoided(_ context.Context, s *step, _ outbox.Received[payments.PaymentResult]) error {
	s.Data.Payment = "voided"
	f.compensateStock(s, s.Data.Outcome, s.Data.Reason)
	return nil
}

func (f *fulfilment) onStockReleased(ctx context.Context, s *step, e outbox.Received[inventory.StockLines]) error {
	s.Data.Stock = "released"
	return f.close(ctx, s, s.Data.Outcome, s.Data.Reason, e.Event.Type)
}

// onCancel gives back what is known to be done, newest first. What is
// still under way (a reservation or an authorisation not answered yet) is
// given back when its late success arrives.
func (f *fulfilment) onCancel(ctx context.Context, s *step, e outbox.Received[CancellationRequested]) error {
	switch s.State() {
	case stateApproved:
		s.Data.Outcome, s.Data.Reason, s.Data.Attempts = stateCancelled, ReasonCancelledByCustomer, 1
		s.Send(payments.CommandVoidPayment.New(s.ID(), payments.PaymentRef{PaymentID: s.ID()}))
		s.SetTimer(timerCompensation, f.m.stepTimeout)
		s.Goto(stateVoidingPayment)
		return nil
	case stateAuthorizingPayment:
		f.compensateStock(s, stateCancelled, ReasonCancelledByCustomer)
		return nil
	}
	return f.close(ctx, s, stateCancelled, ReasonCancelledByCustomer, e.Event.Type)
}

// onStepTimeout: a participant stayed silent for the step timeout.
func (f *fulfilment) onStepTimeout(ctx context.Context, s *step) error {
	switch s.State() {
	case stateAwaitingCredit, stateReservingStock:
		return f.close(ctx, s, stateRejected, ReasonTimeout, "timeout")
	case stateAuthorizingPayment:
		f.compensateStock(s, stateRejected, ReasonTimeout)
	}
	return nil
}

// onCompensationTimeout: a compensation went unanswered; it is sent again,
// until it has been sent maxCompensationAttempts times: then the saga is
// stuck, for an operator (or its late answer) to move on.
func (f *fulfilment) onCompensationTimeout(_ context.Context, s *step) error {
	if s.Data.Attempts >= maxCompensationAttempts {
		s.Stuck("compensation unanswered after " + strconv.Itoa(s.Data.Attempts) + " attempts")
		return nil
	}
	s.Data.Attempts++
	f.resendCompensation(s)
	return nil
}

// onRetry: an operator retries a stuck compensation.
func (f *fulfilment) onRetry(_ context.Context, s *step) error {
	s.Data.Attempts = 1
	f.resendCompensation(s)
	return nil
}

func (f *fulfilment) resendCompensation(s *step) {
	switch s.State() {
	case stateVoidingPayment:
		s.Send(payments.CommandVoidPayment.New(s.ID(), payments.PaymentRef{PaymentID: s.ID()}))
	case stateReleasingStock:
		s.Send(inventory.CommandReleaseStock.New(s.ID(), inventory.ReservationRef{ReservationID: s.ID()}))
	default:
		return
	}
	s.SetTimer(timerCompensation, f.m.stepTimeout)
}

// compensateStock releases the reserved stock on the way to outcome.
func (f *fulfilment) compensateStock(s *step, outcome, reason string) {
	s.Data.Outcome, s.Data.Reason, s.Data.Attempts = outcome, reason, 1
	s.CancelTimer(timerStep)
	s.Send(inventory.CommandReleaseStock.New(s.ID(), inventory.ReservationRef{ReservationID: s.ID()}))
	s.SetTimer(timerCompensation, f.m.stepTimeout)
	s.Goto(stateReleasingStock)
}

// close ends the saga rejected or cancelled: the order takes that status
// and its event goes out, on which customers releases the credit.
func (f *fulfilment) close(ctx context.Context, s *step, outcome, reason, cause string) error {
	s.CancelTimer(timerStep)
	s.CancelTimer(timerCompensation)
	status, ev := StatusRejected, EventOrderRejected
	if outcome == stateCancelled {
		status, ev = StatusCancelled, EventOrderCancelled
	}
	s.Exec(setStatusSQL, s.ID(), status, reason, cause)
	s.Send(ev.New(s.ID(), OrderClosed{OrderID: s.ID(), CustomerID: s.Data.CustomerID, Total: s.Data.Total, Reason: reason}))
	s.Data.Outcome, s.Data.Reason = outcome, reason
	s.Goto(outcome)
	return nil
}
