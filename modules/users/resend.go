package users

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/errs"
	"github.com/cairn-dev/cairn/outbox"
)

// The limits of ResendActivation, per address: one request a minute, and
// five a day. They hold for every address asked about, whether an account
// has it or not, so a 429 tells nothing about accounts either; and they are
// kept in PostgreSQL, so they hold across replicas.
const (
	ResendInterval = time.Minute
	ResendsPerDay  = 5
	resendDay      = 24 * time.Hour
)

// RateLimited is the cause of ErrTooManyRequests: how long the caller must
// wait. Find it with errors.As.
type RateLimited struct{ RetryAfter time.Duration }

func (e *RateLimited) Error() string {
	return fmt.Sprintf("users: too many activation emails asked for; retry after %s", e.RetryAfter)
}

// ResendActivation asks for a new activation email to the address. For a
// pending account with that address (any case), it issues a new token,
// drops the account's earlier tokens (their links stop working) and appends
// users.activation_requested.v1, all in one transaction, so the email goes
// out through the outbox and the mail module exactly as at sign-up. For an
// active account or an unknown address it does nothing, and says so to
// nobody: the caller cannot tell the cases apart. Errors: Invalid
// (validation_failed) for a malformed address, ErrTooManyRequests (its
// cause a *RateLimited) within ResendInterval of the previous request for
// the address or past ResendsPerDay.
func (m *Module) ResendActivation(ctx context.Context, email string) error {
	email = strings.TrimSpace(email)
	switch {
	case email == "":
		return errs.Validation(map[string]string{"email": "is required"})
	case len(email) > MaxEmailLength || !validEmail(email):
		return errs.Validation(map[string]string{"email": emailFormatMessage})
	}
	token, tokenHash, err := newActivationToken()
	if err != nil {
		return err
	}
	key := sha256.Sum256([]byte(strings.ToLower(email)))
	err = pgx.BeginFunc(ctx, m.pool, func(tx pgx.Tx) error {
		s := store{tx}
		if err := s.takeResend(ctx, key[:]); err != nil {
			return err
		}
		u, err := s.pendingByEmail(ctx, email)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		now := time.Now().UTC().Truncate(time.Microsecond)
		expires := now.Add(ActivationTokenTTL)
		// The activation the new token leads to continues this request:
		// the token remembers the event that carries it (see SignUp).
		requested := EventActivationRequested.New(u.ID, ActivationRequested{
			UserID: u.ID, Username: u.Username, Email: u.Email, Token: token, ExpiresAt: expires,
		})
		if requested.ID, err = outbox.NewID(); err != nil {
			return err
		}
		cause := activationCause{EventID: requested.ID, CorrelationID: outbox.MetadataFrom(ctx).CorrelationID}
		if err := s.replaceTokens(ctx, u.ID, tokenHash, now, expires, cause); err != nil {
			return err
		}
		_, err = outbox.Append(ctx, tx, requested)
		return err
	})
	if err != nil {
		return fmt.Errorf("users: resend activation: %w", err)
	}
	return nil
}

// takeResend counts one request for the address key, or returns
// ErrTooManyRequests when the limits refuse it. One statement decides, so
// concurrent requests for one address (on any replica) queue on its row
// and exactly one of them wins a free slot.
func (s store) takeResend(ctx context.Context, key []byte) error {
	interval, day := ResendInterval.Seconds(), resendDay.Seconds()
	tag, err := s.db.Exec(ctx, `INSERT INTO users.activation_email_limits AS l (email_key, last_at, day_started, day_count)
		VALUES ($1, now(), now(), 1)
		ON CONFLICT (email_key) DO UPDATE SET
			last_at = now(),
			day_started = CASE WHEN l.day_started <= now() - make_interval(secs => $3) THEN now() ELSE l.day_started END,
			day_count = CASE WHEN l.day_started <= now() - make_interval(secs => $3) THEN 1 ELSE l.day_count + 1 END
		WHERE l.last_at <= now() - make_interval(secs => $2)
		  AND (l.day_started <= now() - make_interval(secs => $3) OR l.day_count < $4)`,
		key, interval, day, ResendsPerDay)
	if err != nil {
		return fmt.Errorf("users: count activation email request: %w", err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var wait float64
	err = s.db.QueryRow(ctx, `SELECT extract(epoch FROM greatest(
			last_at + make_interval(secs => $2) - now(),
			CASE WHEN day_count >= $4 THEN day_started + make_interval(secs => $3) - now() ELSE interval '0' END))
		FROM users.activation_email_limits WHERE email_key = $1`, key, interval, day, ResendsPerDay).Scan(&wait)
	if err != nil {
		return fmt.Errorf("users: read activation email limit: %w", err)
	}
	secs := int(math.Ceil(max(wait, 1)))
	msg := fmt.Sprintf("too many activation emails asked for this address; try again in %d seconds", secs)
	return ErrTooManyRequests.WithMessage(msg).Wrap(&RateLimited{RetryAfter: time.Duration(secs) * time.Second})
}

// pendingByEmail returns the pending account with this address (any case),
// locked until the transaction ends, or ErrNotFound.
func (s store) pendingByEmail(ctx context.Context, email string) (User, error) {
	u, err := scanUser(s.db.QueryRow(ctx, `SELECT `+accountColumns+` FROM users.accounts
		WHERE lower(email) = lower($1) AND status = 'pending' FOR UPDATE`, email))
	if errors.Is(err, pgx.ErrNoRows) {
		return u, ErrNotFound
	}
	if err != nil {
		return u, fmt.Errorf("users: read account by email: %w", err)
	}
	return u, nil
}

// replaceTokens drops every token of a pending account and stores the new
// one: only the newest activation email works.
func (s store) replaceTokens(ctx context.Context, userID string, hash []byte, issued, expires time.Time, cause activationCause) error {
	if _, err := s.db.Exec(ctx, `DELETE FROM users.activation_tokens WHERE user_id = $1`, userID); err != nil {
		return fmt.Errorf("users: drop earlier activation tokens: %w", err)
	}
	return s.insertToken(ctx, hash, userID, issued, expires, cause)
}

// sweepEvery is how often Run forgets the limits of addresses not asked
// about for a day.
const sweepEvery = time.Hour

// Run sweeps the table of activation email limits until ctx ends: rows
// older than a day limit nothing any more. Every replica runs it; the
// deletes are idempotent.
func (m *Module) Run(ctx context.Context) error {
	for {
		tag, err := m.pool.Exec(ctx, `DELETE FROM users.activation_email_limits
			WHERE last_at < now() - make_interval(secs => $1)`, resendDay.Seconds())
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			m.log.Warn("sweep activation email limits", "err", err)
		case tag.RowsAffected() > 0:
			m.log.Debug("swept activation email limits", "rows", tag.RowsAffected())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(sweepEvery):
		}
	}
}
