package mail

import "time"

// The mail module's public events: the contract with every consumer. A
// breaking change is a new version. Key = user id.
const (
	// EventActivationEmailSent: the activation email for one
	// users.activation_requested.v1 was handed to the SMTP server (or kept
	// in the mailbox). Published once per request event; it carries no
	// token.
	EventActivationEmailSent = "mail.activation_email_sent.v1"
)

// ActivationEmailSent is the data of mail.activation_email_sent.v1.
// MessageID is the id of the row in mail.messages (a UUIDv7), To the
// address the email went to.
type ActivationEmailSent struct {
	UserID    string `json:"user_id"`
	MessageID string `json:"message_id"`
	To        string `json:"to"`
}

// activationRequested is the data of users.activation_requested.v1 as the
// users module publishes it (users.ActivationRequested). Mail keeps its own
// copy so it decodes the JSON contract rather than depending on the Go type.
type activationRequested struct {
	UserID    string    `json:"user_id"`
	Username  string    `json:"username"`
	Email     string    `json:"email"`
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}
