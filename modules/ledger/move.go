package ledger

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/errs"
	"github.com/cairn-dev/cairn/outbox"
)

// moveCommand is one validated deposit or withdrawal.
type moveCommand struct {
	kind      string // deposited or withdrawn: the log entry's type
	event     outbox.EventType[Moved]
	accountID string
	amount    int64
	delta     int64         // amount, or -amount for a withdrawal
	key       string        // the Idempotency-Key, "" for none
	hash      []byte        // of kind, account and amount: what a reused key must match
	retention time.Duration // of the key: an older one is claimed afresh
}

func (m *Module) move(ctx context.Context, kind, accountID string, amount int64, key string) (mv Movement, replayed bool, err error) {
	fields := map[string]string{}
	if !validID(accountID) {
		fields["id"] = "is not a valid account id"
	}
	if amount <= 0 {
		fields["amount"] = "must be a positive whole number of minor units"
	} else if amount > MaxAmount {
		fields["amount"] = fmt.Sprintf("must be at most %d", MaxAmount)
	}
	if len(key) > 255 {
		fields["Idempotency-Key"] = "must be at most 255 characters"
	}
	if len(fields) > 0 {
		return mv, false, errs.Validation(fields)
	}
	cmd := moveCommand{kind: kind, event: EventDeposited, accountID: accountID, amount: amount, delta: amount, key: key, retention: m.keyRetention}
	if kind == "withdrawn" {
		cmd.event, cmd.delta = EventWithdrawn, -amount
	}
	hash := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%d", kind, accountID, amount))
	cmd.hash = hash[:]
	err = m.pool.AcquireFunc(ctx, func(c *pgxpool.Conn) error {
		mv, replayed, err = cmd.run(ctx, c.Conn())
		return err
	})
	if err != nil {
		return Movement{}, false, fmt.Errorf("ledger: %s: %w", kind, err)
	}
	return mv, replayed, nil
}

// run applies cmd in one transaction in two round trips: BEGIN, the
// idempotency key's claim and the balance update with its log entry in the
// first; the outbox event, the stored response and COMMIT in the second. A
// replay or a refused move rolls back instead of the second; a replay's
// update matched no row, so it wrote nothing and waited on no lock.
func (cmd moveCommand) run(ctx context.Context, conn *pgx.Conn) (Movement, bool, error) {
	eventID, err := outbox.NewID()
	if err != nil {
		return Movement{}, false, err
	}
	var mv Movement
	b := &pgx.Batch{}
	b.Queue("begin")
	var claim idempotencyClaim
	if cmd.key != "" {
		queueClaimIdempotencyKey(b, cmd.key, cmd.hash, cmd.retention, &claim)
	}
	var moved bool
	queueMove(b, cmd.accountID, cmd.kind, cmd.delta, cmd.amount, eventID, cmd.key, &mv, &moved)
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		endTx(ctx, conn)
		return Movement{}, false, fmt.Errorf("claim key and update balance: %w", err)
	}

	switch {
	case cmd.key != "" && !claim.claimed:
		endTx(ctx, conn)
		if !bytes.Equal(claim.requestHash, cmd.hash) {
			return Movement{}, false, ErrIdempotencyKeyReused
		}
		var stored Movement
		if err := json.Unmarshal(claim.response, &stored); err != nil {
			return Movement{}, false, fmt.Errorf("decode stored response: %w", err)
		}
		return stored, true, nil
	case !moved:
		defer endTx(ctx, conn)
		a, err := store{conn}.account(ctx, cmd.accountID)
		switch {
		case err != nil:
			return Movement{}, false, err
		case cmd.delta < 0 && a.Balance < cmd.amount:
			return Movement{}, false, ErrInsufficientFunds
		default:
			return Movement{}, false, ErrBalanceLimit
		}
	}

	mv.Amount, mv.EventID = cmd.amount, eventID
	b = &pgx.Batch{}
	ev := cmd.event.New(cmd.accountID, Moved{
		AccountID: cmd.accountID, Amount: cmd.amount, Currency: mv.Currency, Balance: mv.Balance, Version: mv.Version, OccurredAt: mv.OccurredAt,
	})
	ev.ID = eventID
	if _, err := outbox.Queue(ctx, b, ev); err != nil {
		endTx(ctx, conn)
		return Movement{}, false, err
	}
	if cmd.key != "" {
		body, err := json.Marshal(mv)
		if err != nil {
			endTx(ctx, conn)
			return Movement{}, false, fmt.Errorf("encode response: %w", err)
		}
		queueSaveIdempotentResponse(b, cmd.key, 201, body)
	}
	b.Queue("commit")
	if err := sendTx(ctx, conn, b); err != nil {
		return Movement{}, false, fmt.Errorf("append event and commit: %w", err)
	}
	return mv, false, nil
}
