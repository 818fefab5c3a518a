package mail

import (
	"time"

	"github.com/cairn-dev/cairn/outbox"
)

// EventActivationEmailSent is the mail module's public event: the
// activation email for one users.activation_requested.v1 was handed to the
// SMTP server (or kept in the mailbox). Published once per request event;
// it carries no token. Key = user id. A breaking change is a new version.
var EventActivationEmailSent = outbox.Declare[ActivationEmailSent](outbox.EventSpec{
	Type: "mail.activation_email_sent.v1", Visibility: outbox.Public,
	Description: "The activation email of one activation request went out (or into the mailbox).",
})

// ActivationEmailSent is the data of mail.activation_email_sent.v1.
// MessageID is the id of the row in mail.messages (a UUIDv7), To the
// address the email went to.
type ActivationEmailSent struct {
	UserID    string `json:"user_id"`
	MessageID string `json:"message_id"`
	To        string `json:"to" cairn:"personal"`
}

// activationRequested is the users module's internal event, named rather
// than imported: mail decodes the JSON contract into its own copy of the
// fields it reads, and start-up checks the copy against the declaration
// (users.ActivationRequested).
var activationRequested = outbox.Named[activationRequestedData]("users.activation_requested.v1", outbox.Internal)

type activationRequestedData struct {
	UserID    string    `json:"user_id"`
	Username  string    `json:"username"`
	Email     string    `json:"email"`
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}
