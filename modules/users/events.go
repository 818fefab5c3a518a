package users

import "time"

// The users module's events: the contract with every consumer (the mail
// module among them). A breaking change is a new version. Key = user id, so
// a consumer sees one user's events in the order they happened. Sign-up
// appends EventAccountCreated and then EventActivationRequested in one
// transaction.
const (
	// EventAccountCreated is public: subject events.users.account_created.v1.
	EventAccountCreated = "users.account_created.v1"
	// EventActivationRequested is internal (outbox.Internal; subject
	// internal.users.activation_requested.v1, stream INTERNAL) because it
	// carries the raw activation token. Subscribe with
	// Visibility: outbox.Internal.
	EventActivationRequested = "users.activation_requested.v1"
	// EventAccountActivated is public: subject events.users.account_activated.v1.
	// It is appended once per user, however often the token is used.
	EventAccountActivated = "users.account_activated.v1"
)

// AccountCreated is the data of users.account_created.v1. Email is as the
// user typed it; compare it case-insensitively.
type AccountCreated struct {
	UserID    string    `json:"user_id"`
	Username  string    `json:"username"`
	Email     string    `json:"email"`
	CreatedAt time.Time `json:"created_at"`
}

// ActivationRequested is the data of users.activation_requested.v1: what
// the mail module needs to send the activation link. Token is the raw token
// (base64url, no padding) that POST /api/v1/users/activate takes; it is
// valid until ExpiresAt and is stored nowhere else.
type ActivationRequested struct {
	UserID    string    `json:"user_id"`
	Username  string    `json:"username"`
	Email     string    `json:"email"`
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// AccountActivated is the data of users.account_activated.v1.
type AccountActivated struct {
	UserID      string    `json:"user_id"`
	ActivatedAt time.Time `json:"activated_at"`
}
