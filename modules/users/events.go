package users

import (
	"time"

	"github.com/cairn-dev/cairn/outbox"
)

// The users module's events: the contract with every consumer (the mail
// module among them). A breaking change is a new version. Key = user id, so
// a consumer sees one user's events in the order they happened. Sign-up
// appends EventAccountCreated and then EventActivationRequested in one
// transaction.
var (
	EventAccountCreated = outbox.Declare[AccountCreated](outbox.EventSpec{
		Type: "users.account_created.v1", Visibility: outbox.Public,
		Description: "A user signed up; the account is pending until it is activated.",
	})
	// EventActivationRequested is internal (stream INTERNAL) because it
	// carries the raw activation token.
	EventActivationRequested = outbox.Declare[ActivationRequested](outbox.EventSpec{
		Type: "users.activation_requested.v1", Visibility: outbox.Internal,
		Description: "A pending account needs its activation email, with the token it must carry.",
	})
	// EventAccountActivated is appended once per user, however often the
	// token is used.
	EventAccountActivated = outbox.Declare[AccountActivated](outbox.EventSpec{
		Type: "users.account_activated.v1", Visibility: outbox.Public,
		Description: "A user activated their account with the token from the email.",
	})
)

// AccountCreated is the data of users.account_created.v1. Email is as the
// user typed it; compare it case-insensitively.
type AccountCreated struct {
	UserID    string    `json:"user_id"`
	Username  string    `json:"username" cairn:"personal"`
	Email     string    `json:"email" cairn:"personal"`
	CreatedAt time.Time `json:"created_at"`
}

// ActivationRequested is the data of users.activation_requested.v1: what
// the mail module needs to send the activation link. Token is the raw token
// (base64url, no padding) that POST /api/v1/users/activate takes; it is
// valid until ExpiresAt and is stored nowhere else.
type ActivationRequested struct {
	UserID    string    `json:"user_id"`
	Username  string    `json:"username" cairn:"personal"`
	Email     string    `json:"email" cairn:"personal"`
	Token     string    `json:"token" cairn:"secret"`
	ExpiresAt time.Time `json:"expires_at"`
}

// AccountActivated is the data of users.account_activated.v1.
type AccountActivated struct {
	UserID      string    `json:"user_id"`
	ActivatedAt time.Time `json:"activated_at"`
}
