// Package users is the sign-up half of sign-up and activation: it keeps
// accounts (schema users) with bcrypt password hashes, and issues each new
// account an activation token valid for 24 hours. It publishes
// users.account_created.v1 and users.account_activated.v1, and the internal
// users.activation_requested.v1 that carries the raw token to the mail
// module, all with the user id as key.
package users

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/crypto/bcrypt"

	"github.com/cairn-dev/cairn/errs"
	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/privacy"
)

// ActivationTokenTTL is how long an activation token is valid after it was
// issued.
const ActivationTokenTTL = 24 * time.Hour

// The statuses of an account.
const (
	StatusPending = "pending"
	StatusActive  = "active"
)

// Module is the users facade; other modules use it or its events, never
// its tables.
type Module struct {
	pool *pgxpool.Pool
	log  *slog.Logger
}

//go:embed migrations/*.sql
var migrations embed.FS

// Definition registers the module with the app (app/modules.go).
var Definition = modules.Define("users", migrations, New)

// New builds the module and registers its routes and its activation page.
func New(d modules.Deps) (*Module, error) {
	m := &Module{pool: d.Pool, log: d.Logger("users")}
	d.Route(m.routes)
	if d.Pages != nil {
		registerActivatePage(d.Pages)
	}
	if err := outbox.Handle(d.Consumers, ForgetConsumer, privacy.EventSubjectForgotten, forget, outbox.RebuildableWith(nil)); err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	return m, registerFold(d.Folds)
}

// User is an account as other code may see it: never its password hash.
type User struct {
	ID          string
	Username    string
	Email       string
	Status      string // StatusPending or StatusActive
	CreatedAt   time.Time
	ActivatedAt time.Time // zero while pending
}

// SignUp creates a pending account and, in the same transaction, appends
// users.account_created.v1 and the internal users.activation_requested.v1
// carrying a fresh activation token. Username and email are trimmed of
// surrounding space; the email is kept as typed but is unique regardless
// of case. Errors: Invalid (validation_failed naming the fields) and
// ErrEmailTaken, both with nothing written.
func (m *Module) SignUp(ctx context.Context, username, email, password string) (User, error) {
	username, email = strings.TrimSpace(username), strings.TrimSpace(email)
	if fields := validateSignUp(username, email, password); len(fields) > 0 {
		return User{}, errs.Validation(fields)
	}
	// bcrypt takes tens of milliseconds on purpose: never inside the
	// transaction, where it would hold a connection and delay the relay.
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return User{}, fmt.Errorf("users: hash password: %w", err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return User{}, fmt.Errorf("users: new user id: %w", err)
	}
	token, tokenHash, err := newActivationToken()
	if err != nil {
		return User{}, err
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	expires := now.Add(ActivationTokenTTL)
	u := User{ID: id.String(), Username: username, Email: email, Status: StatusPending, CreatedAt: now}
	// The activation continues this sign-up: the token remembers the
	// event that carried it and the sign-up's correlation id. Both ids are
	// taken here, in order, so that they sort as the events were appended.
	created := EventAccountCreated.New(u.ID, AccountCreated{
		UserID: u.ID, Username: u.Username, Email: u.Email, CreatedAt: u.CreatedAt,
	})
	requested := EventActivationRequested.New(u.ID, ActivationRequested{
		UserID: u.ID, Username: u.Username, Email: u.Email, Token: token, ExpiresAt: expires,
	})
	if created.ID, err = outbox.NewID(); err != nil {
		return User{}, err
	}
	if requested.ID, err = outbox.NewID(); err != nil {
		return User{}, err
	}
	cause := activationCause{EventID: requested.ID, CorrelationID: outbox.MetadataFrom(ctx).CorrelationID}
	err = pgx.BeginFunc(ctx, m.pool, func(tx pgx.Tx) error {
		s := store{tx}
		if err := s.insertAccount(ctx, u, string(hash)); err != nil {
			return err
		}
		if err := s.insertToken(ctx, tokenHash, u.ID, now, expires, cause); err != nil {
			return err
		}
		_, err := outbox.Append(ctx, tx, created, requested)
		return err
	})
	if err != nil {
		return User{}, fmt.Errorf("users: sign up: %w", err)
	}
	return u, nil
}

// User returns the account with this id. Errors: Invalid for a malformed
// id, ErrNotFound.
func (m *Module) User(ctx context.Context, id string) (User, error) {
	if !validID(id) {
		return User{}, errs.Validation(map[string]string{"id": "is not a valid user id"})
	}
	return store{m.pool}.user(ctx, id)
}

// Activate activates the account the token was issued for and appends
// users.account_activated.v1 in the same transaction. Activating an active
// account again, or concurrently, returns it unchanged and appends nothing.
// Errors: Invalid (validation_failed) for a blank token, ErrInvalidToken for
// an unknown or expired one.
func (m *Module) Activate(ctx context.Context, token string) (User, error) {
	if strings.TrimSpace(token) == "" {
		return User{}, errs.Validation(map[string]string{"token": "is required"})
	}
	hash := sha256.Sum256([]byte(token))
	now := time.Now().UTC().Truncate(time.Microsecond)
	var u User
	err := pgx.BeginFunc(ctx, m.pool, func(tx pgx.Tx) error {
		s := store{tx}
		userID, cause, err := s.tokenUser(ctx, hash[:], now)
		if err != nil {
			return err
		}
		var activated bool
		u, activated, err = s.activate(ctx, userID, now)
		if err != nil || !activated {
			return err
		}
		_, err = outbox.Append(cause.context(ctx), tx, EventAccountActivated.New(u.ID, AccountActivated{
			UserID: u.ID, ActivatedAt: u.ActivatedAt,
		}))
		return err
	})
	if err != nil {
		return User{}, fmt.Errorf("users: activate: %w", err)
	}
	return u, nil
}

// activationCause is what an activation continues: the event that carried
// the token, and the sign-up's correlation id (empty when the sign-up had
// none, or the token predates them).
type activationCause struct {
	EventID       string
	CorrelationID string
}

// context stamps the activation's event as caused by the activation
// request and correlated with the sign-up, keeping the request's trace.
func (c activationCause) context(ctx context.Context) context.Context {
	if c.EventID == "" {
		return ctx
	}
	md := outbox.MetadataFrom(ctx)
	md.CausationID, md.CorrelationID = c.EventID, c.CorrelationID
	if md.CorrelationID == "" {
		md.CorrelationID = c.EventID
	}
	return outbox.WithMetadata(ctx, md)
}

// newActivationToken returns a random token (32 bytes, base64url without
// padding) and the SHA-256 hash under which it is stored.
func newActivationToken() (token string, hash []byte, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", nil, fmt.Errorf("users: activation token: %w", err)
	}
	token = base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(token))
	return token, sum[:], nil
}

func validID(id string) bool {
	u, err := uuid.Parse(id)
	return err == nil && len(id) == 36 && u != uuid.Nil
}
