// Package ledger is the event-sourced bank account module: an append-only
// log of account events (schema ledger, table entries) is the source of
// truth, and the current balance is a projection of it kept in the same
// transaction. It publishes ledger.account_opened.v1, ledger.deposited.v1 and
// ledger.withdrawn.v1 with the account id as key.
package ledger

import (
	"context"
	"embed"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/errs"
	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/outbox"
)

// MaxAmount is the largest single deposit or withdrawal, in minor units
// (10 trillion of a two-decimal currency).
const MaxAmount int64 = 1_000_000_000_000_000

// Module is the ledger's facade; other modules use it or its events, never
// its tables.
type Module struct {
	pool *pgxpool.Pool
	log  *slog.Logger
	// keyRetention is how long an Idempotency-Key is remembered.
	keyRetention time.Duration
}

//go:embed migrations/*.sql
var migrations embed.FS

// Definition registers the module with the app (app/modules.go). It offers
// `cairn rebuild ledger`.
var Definition = modules.Define("ledger", migrations, New, rebuildCommand)

// New builds the module and registers its routes. Run sweeps its expired
// idempotency keys.
func New(d modules.Deps) (*Module, error) {
	retention := d.Config.IdempotencyRetention
	if retention <= 0 {
		return nil, fmt.Errorf("ledger: CAIRN_IDEMPOTENCY_RETENTION must be positive, not %s", retention)
	}
	m := &Module{pool: d.Pool, log: d.Logger("ledger"), keyRetention: retention}
	d.Route(m.routes)
	return m, registerFold(d.Folds)
}

// Account is an account's state at some version.
type Account struct {
	ID       string
	Owner    string
	Currency string
	Balance  int64
	Version  int64
	OpenedAt time.Time
}

// Movement is the outcome of a deposit or withdrawal.
type Movement struct {
	AccountID  string    `json:"account_id"`
	Amount     int64     `json:"amount"`
	Balance    int64     `json:"balance"`
	Version    int64     `json:"version"`
	EventID    string    `json:"event_id"`
	Currency   string    `json:"-"`
	OccurredAt time.Time `json:"-"`
}

// Entry is one event of an account's history.
type Entry struct {
	Version    int64
	Type       string // opened, deposited, withdrawn
	Amount     int64
	Balance    int64
	OccurredAt time.Time
	EventID    string
}

// Open opens an account with a zero balance at version 0. Errors: Invalid
// for a blank owner or an unknown currency.
func (m *Module) Open(ctx context.Context, owner, currency string) (Account, error) {
	owner = strings.TrimSpace(owner)
	fields := map[string]string{}
	if owner == "" {
		fields["owner"] = "is required"
	} else if len(owner) > 200 {
		fields["owner"] = "must be at most 200 characters"
	}
	if !validCurrency(currency) {
		fields["currency"] = "must be an ISO 4217 code such as EUR or USD"
	}
	if len(fields) > 0 {
		return Account{}, errs.Validation(fields)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Account{}, fmt.Errorf("ledger: new account id: %w", err)
	}
	a := Account{ID: id.String(), Owner: owner, Currency: currency, OpenedAt: time.Now().UTC().Truncate(time.Microsecond)}
	err = m.pool.AcquireFunc(ctx, func(c *pgxpool.Conn) error {
		b := &pgx.Batch{}
		b.Queue("begin")
		queueInsertAccount(b, a)
		ev, err := outbox.Queue(ctx, b, EventAccountOpened.New(a.ID, AccountOpened{
			AccountID: a.ID, Owner: a.Owner, Currency: a.Currency, OccurredAt: a.OpenedAt,
		}))
		if err != nil {
			return err
		}
		queueInsertEntry(b, a.ID, Entry{Type: "opened", OccurredAt: a.OpenedAt, EventID: ev[0].ID})
		b.Queue("commit")
		if err := sendTx(ctx, c.Conn(), b); err != nil {
			return fmt.Errorf("insert account, entry and event: %w", err)
		}
		return nil
	})
	if err != nil {
		return Account{}, fmt.Errorf("ledger: open account: %w", err)
	}
	return a, nil
}

// Deposit adds amount to the account. With an idempotency key, a repeat of
// the same request returns the first outcome (replayed = true) and writes
// nothing. Errors: Invalid, ErrNotFound, ErrBalanceLimit,
// ErrIdempotencyKeyReused.
func (m *Module) Deposit(ctx context.Context, accountID string, amount int64, idempotencyKey string) (Movement, bool, error) {
	return m.move(ctx, "deposited", accountID, amount, idempotencyKey)
}

// Withdraw takes amount from the account; the balance never goes negative.
// Errors: as Deposit, and ErrInsufficientFunds (nothing is written).
func (m *Module) Withdraw(ctx context.Context, accountID string, amount int64, idempotencyKey string) (Movement, bool, error) {
	return m.move(ctx, "withdrawn", accountID, amount, idempotencyKey)
}

// Account returns the account's current state. Errors: Invalid, ErrNotFound.
func (m *Module) Account(ctx context.Context, id string) (Account, error) {
	if !validID(id) {
		return Account{}, errs.Validation(map[string]string{"id": "is not a valid account id"})
	}
	return store{m.pool}.account(ctx, id)
}

// AccountAsOf returns the account as it was at time t, read from the log.
// Errors: Invalid, ErrNotFound (also when t is before it was opened).
func (m *Module) AccountAsOf(ctx context.Context, id string, t time.Time) (Account, error) {
	a, err := m.Account(ctx, id)
	if err != nil {
		return a, err
	}
	a.Balance, a.Version, err = store{m.pool}.stateAt(ctx, id, t)
	return a, err
}

// History returns up to limit entries after afterVersion, oldest first.
// Errors: Invalid, ErrNotFound.
func (m *Module) History(ctx context.Context, id string, afterVersion int64, limit int) ([]Entry, error) {
	if _, err := m.Account(ctx, id); err != nil {
		return nil, err
	}
	return store{m.pool}.entries(ctx, id, afterVersion, limit)
}

func validID(id string) bool {
	u, err := uuid.Parse(id)
	return err == nil && len(id) == 36 && u != uuid.Nil
}
