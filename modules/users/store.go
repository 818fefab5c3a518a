package users

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cairn-dev/cairn/modules"
)

type store struct{ db modules.DBTX }

// emailIndex is the unique index on lower(email) (migrations/00001_users.sql).
const emailIndex = "accounts_email_lower"

const accountColumns = `id::text, username, email, status, created_at, activated_at`

// insertAccount inserts a pending account. The unique index decides a race
// between two sign-ups with one address: the loser waits for the winner's
// commit and then gets ErrEmailTaken.
func (s store) insertAccount(ctx context.Context, u User, passwordHash string) error {
	_, err := s.db.Exec(ctx, `INSERT INTO users.accounts (id, username, email, password_hash, status, created_at)
		VALUES ($1, $2, $3, $4, 'pending', $5)`, u.ID, u.Username, u.Email, passwordHash, u.CreatedAt)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == emailIndex {
		return ErrEmailTaken
	}
	if err != nil {
		return fmt.Errorf("users: insert account: %w", err)
	}
	return nil
}

func (s store) insertToken(ctx context.Context, hash []byte, userID string, issued, expires time.Time, cause activationCause) error {
	_, err := s.db.Exec(ctx, `INSERT INTO users.activation_tokens (token_hash, user_id, issued_at, expires_at, requested_event_id, correlation_id)
		VALUES ($1, $2, $3, $4, $5, nullif($6, ''))`, hash, userID, issued, expires, cause.EventID, cause.CorrelationID)
	if err != nil {
		return fmt.Errorf("users: insert activation token: %w", err)
	}
	return nil
}

// tokenUser returns the user a token hash was issued for and what its
// activation continues, or ErrInvalidToken when there is no such token or
// it expired before now.
func (s store) tokenUser(ctx context.Context, hash []byte, now time.Time) (string, activationCause, error) {
	var userID string
	var c activationCause
	err := s.db.QueryRow(ctx, `SELECT user_id::text, coalesce(requested_event_id::text, ''), coalesce(correlation_id, '')
		FROM users.activation_tokens WHERE token_hash = $1 AND expires_at > $2`, hash, now).Scan(&userID, &c.EventID, &c.CorrelationID)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", c, ErrInvalidToken
	}
	if err != nil {
		return "", c, fmt.Errorf("users: read activation token: %w", err)
	}
	return userID, c, nil
}

// activate moves a pending account to active; activated is false, and the
// account is returned as it is, when it was already active. Under the row
// lock a concurrent activation re-checks status, so only one of them wins.
func (s store) activate(ctx context.Context, id string, at time.Time) (u User, activated bool, err error) {
	u, err = scanUser(s.db.QueryRow(ctx, `UPDATE users.accounts SET status = 'active', activated_at = $2
		WHERE id = $1 AND status = 'pending'
		RETURNING `+accountColumns, id, at))
	if errors.Is(err, pgx.ErrNoRows) {
		u, err = s.user(ctx, id)
		return u, false, err
	}
	if err != nil {
		return u, false, fmt.Errorf("users: activate account: %w", err)
	}
	return u, true, nil
}

func (s store) user(ctx context.Context, id string) (User, error) {
	u, err := scanUser(s.db.QueryRow(ctx, `SELECT `+accountColumns+` FROM users.accounts WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return u, ErrNotFound
	}
	if err != nil {
		return u, fmt.Errorf("users: read account: %w", err)
	}
	return u, nil
}

func scanUser(row pgx.Row) (User, error) {
	var u User
	var activatedAt *time.Time
	err := row.Scan(&u.ID, &u.Username, &u.Email, &u.Status, &u.CreatedAt, &activatedAt)
	if activatedAt != nil {
		u.ActivatedAt = *activatedAt
	}
	u.CreatedAt = u.CreatedAt.UTC()
	u.ActivatedAt = u.ActivatedAt.UTC()
	return u, err
}
