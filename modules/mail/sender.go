package mail

import "context"

// Message is one email, rendered.
type Message struct {
	// ID is the Message-ID header without its angle brackets. It is derived
	// from the causing event, so a copy sent again after a crash carries
	// the same Message-ID as the first.
	ID      string
	To      string
	Subject string
	Text    string
	HTML    string
}

// Sender hands a message to a mail system and returns the id that system
// gave it ("" if none). Errors wrapped with outbox.Unavailable mean the
// system is down and the message should be retried later; any other error
// means this message was refused.
type Sender interface {
	Send(ctx context.Context, m Message) (providerID string, err error)
}

// Mailbox is the Sender used when CAIRN_SMTP_URL is empty. It sends nothing:
// the row the handler writes to mail.messages, in the consumer's
// transaction, is the delivery, so a message lands in the mailbox exactly
// when its event is recorded as handled. It never fails.
type Mailbox struct{}

// Send accepts every message.
func (Mailbox) Send(context.Context, Message) (string, error) { return "", nil }
