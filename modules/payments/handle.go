package payments

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/outbox"
)

// called is what a gateway call hands to its record: the answer, or the
// payment as recorded already (no call made).
type called struct {
	answer   Answer
	recorded *Payment
	dry      bool // a dry run: no call was made, and there is no answer to record
}

// gatewayCall is what a dry run records of a gateway call it did not make.
type gatewayCall struct {
	PaymentID string         `json:"payment_id"`
	Amount    *modules.Money `json:"amount,omitempty"`
}

// callAuthorize is the first phase of payments.authorize_payment.v1.
func (m *Module) callAuthorize(ctx context.Context, db *pgxpool.Pool, e outbox.Received[AuthorizePayment]) (called, error) {
	c := e.Data
	if err := checkPaymentID(e, c.PaymentID); err != nil {
		return called{}, err
	}
	if why := modules.CheckMoney(c.Amount, false); why != "" {
		return called{}, outbox.Permanent(fmt.Errorf("payments: %s %s: %s", e.Event.Type, e.ID, why))
	}
	if p, ok, err := (store{db}).payment(ctx, c.PaymentID); err != nil || ok {
		return called{recorded: &p}, err
	}
	// The last moment to find that another replica took the consumer over.
	if err := e.CheckTerm(); err != nil {
		return called{}, err
	}
	a, err := outbox.Outside(ctx, "gateway.authorize", gatewayCall{PaymentID: c.PaymentID, Amount: &c.Amount},
		func(ctx context.Context) (Answer, error) { return m.gateway.Authorize(ctx, c.PaymentID, c.Amount) })
	return called{answer: a, dry: outbox.DryRun(ctx)}, err
}

// recordAuthorize records the gateway's answer and replies
// payment_authorized or payment_declined. An authorisation voided in the
// meantime (the gateway answers voided) is recorded and not replied to:
// the void answered for it.
func (m *Module) recordAuthorize(ctx context.Context, tx pgx.Tx, e outbox.Received[AuthorizePayment], r called) error {
	if r.recorded != nil || r.dry {
		return nil
	}
	c := e.Data
	p := Payment{ID: c.PaymentID, Amount: c.Amount, Status: r.answer.Status, AuthorizationID: r.answer.ID, Reason: r.answer.Reason}
	// One round trip. The payment id has no row yet: the effect found none,
	// and its commands are handled one at a time (one lane per key); a row
	// written meanwhile all the same fails this transaction, and the retry
	// finds it recorded.
	b := &pgx.Batch{}
	b.Queue(insertPaymentSQL, p.ID, p.Amount.Amount, p.Amount.Currency, p.Status, p.AuthorizationID, p.Reason)
	res := PaymentResult{PaymentID: p.ID, Amount: p.Amount, AuthorizationID: p.AuthorizationID, Reason: p.Reason}
	var err error
	switch p.Status {
	case StatusAuthorized:
		_, err = outbox.Queue(ctx, b, EventPaymentAuthorized.New(p.ID, res))
	case StatusDeclined:
		_, err = outbox.Queue(ctx, b, EventPaymentDeclined.New(p.ID, res))
	}
	if err != nil {
		return err
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("payments: record payment %s: %w", p.ID, err)
	}
	return nil
}

// callVoid is the first phase of payments.void_payment.v1: it calls the
// gateway unless the payment is recorded as voided or declined already.
func (m *Module) callVoid(ctx context.Context, db *pgxpool.Pool, e outbox.Received[PaymentRef]) (called, error) {
	id := e.Data.PaymentID
	if err := checkPaymentID(e, id); err != nil {
		return called{}, err
	}
	p, ok, err := (store{db}).payment(ctx, id)
	if err != nil || (ok && p.Status != StatusAuthorized) {
		return called{recorded: &p}, err
	}
	if err := e.CheckTerm(); err != nil {
		return called{}, err
	}
	a, err := outbox.Outside(ctx, "gateway.void", gatewayCall{PaymentID: id},
		func(ctx context.Context) (Answer, error) { return m.gateway.Void(ctx, id) })
	return called{answer: a, dry: outbox.DryRun(ctx)}, err
}

// recordVoid records the void and replies payment_voided, also for a
// payment voided before or never authorised, so a resent command is
// answered.
func (m *Module) recordVoid(ctx context.Context, tx pgx.Tx, e outbox.Received[PaymentRef], r called) error {
	if r.dry {
		return nil
	}
	id := e.Data.PaymentID
	s := store{tx}
	p, ok, err := s.payment(ctx, id)
	if err != nil {
		return err
	}
	if !ok {
		// Never authorised here: record the void, so an authorisation
		// that arrives after it finds the payment closed.
		p = Payment{ID: id, Amount: modules.Money{Currency: "XXX"}, Status: StatusVoided, AuthorizationID: r.answer.ID}
		if _, err := s.insert(ctx, p); err != nil {
			return err
		}
	} else if p.Status == StatusAuthorized {
		if err := s.setVoided(ctx, id); err != nil {
			return err
		}
	}
	_, err = outbox.Append(ctx, tx, EventPaymentVoided.New(id, PaymentResult{PaymentID: id, Amount: p.Amount, AuthorizationID: p.AuthorizationID}))
	return err
}

func checkPaymentID[T any](e outbox.Received[T], id string) error {
	if u, err := uuid.Parse(id); err != nil || len(id) != 36 || u == uuid.Nil {
		return outbox.Permanent(fmt.Errorf("payments: %s %s: payment id %q is not a UUID", e.Event.Type, e.ID, id))
	}
	return nil
}
