package mail

import (
	"context"
	"fmt"
	htmltemplate "html/template"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/errs"
	"github.com/cairn-dev/cairn/outbox"
)

// sendResult is what sendActivation hands to recordActivation.
type sendResult struct {
	req        activationRequestedData
	msg        Message
	providerID string
	already    bool // mail.messages has this event's message already
}

// sendActivation is the first phase of handling one
// users.activation_requested.v1: it sends the activation email, at most
// once per event id as far as this database knows (see the package doc for
// the crash window). The consumer runtime runs it before it opens the
// handler's transaction, so no connection or transaction is held while the
// SMTP server answers; it reads mail.messages through the runtime's pool.
func (m *Module) sendActivation(ctx context.Context, db *pgxpool.Pool, e outbox.Received[activationRequestedData]) (sendResult, error) {
	req := e.Data
	var missing []string
	for _, f := range [][2]string{{"user_id", req.UserID}, {"email", req.Email}, {"token", req.Token}} {
		if strings.TrimSpace(f[1]) == "" {
			missing = append(missing, f[0])
		}
	}
	if len(missing) > 0 {
		return sendResult{}, outbox.Permanent(fmt.Errorf("mail: %s %s has no %s", activationRequested, e.ID, strings.Join(missing, ", ")))
	}
	if req.Token == outbox.Redacted && !outbox.DryRun(ctx) {
		// A dead letter retried by a process without the key it was
		// sealed with: the token exists nowhere else. Sending the
		// placeholder would only mislead.
		return sendResult{}, outbox.Permanent(fmt.Errorf("mail: %s %s: its token was redacted: it was sealed when parked as a dead letter "+
			"under a key this process does not have (set the same CAIRN_SECRET_KEY on every replica), so this email cannot be sent again; "+
			"delete the dead letter, and have the user ask for a new email (POST /api/v1/users/activation-emails)", activationRequested, e.ID))
	}
	// A dry run shows the email of every event, sent already or not: it
	// asks what the handler sends, not what is left to send.
	if !outbox.DryRun(ctx) {
		done, err := store{db}.sentFor(ctx, e.ID)
		if err != nil || done {
			return sendResult{already: done}, err
		}
	}
	msg, err := renderActivation(m.publicURL, m.publicURL.Hostname(), e.ID, req)
	if err != nil {
		return sendResult{}, fmt.Errorf("mail: render activation email: %w", err)
	}
	// The last moment to find that another replica took the consumer over
	// (and will send this email itself).
	if err := e.CheckTerm(); err != nil {
		return sendResult{}, err
	}
	// The one outside call: a dry run records the email instead (never its
	// token or body).
	providerID, err := outbox.Outside(ctx, "email", emailDetail{To: msg.To, Subject: msg.Subject, MessageID: msg.ID},
		func(ctx context.Context) (string, error) { return m.sender.Send(ctx, msg) })
	if err != nil {
		return sendResult{}, err
	}
	return sendResult{req: req, msg: msg, providerID: providerID}, nil
}

// emailDetail is what a dry run records of an email it did not send.
type emailDetail struct {
	To        string `json:"to"`
	Subject   string `json:"subject"`
	MessageID string `json:"message_id"`
}

// recordActivation is the second phase, in the runtime's transaction: it
// records the message sent (in mailbox mode, the row is the delivery) and
// publishes mail.activation_email_sent.v1.
func (m *Module) recordActivation(ctx context.Context, tx pgx.Tx, e outbox.Received[activationRequestedData], res sendResult) error {
	if res.already {
		return nil
	}
	id, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("mail: new message id: %w", err)
	}
	row := Sent{
		ID: id.String(), EventID: e.ID, UserID: res.req.UserID, To: res.msg.To, Subject: res.msg.Subject,
		Text: res.msg.Text, HTML: res.msg.HTML, Transport: m.transport, ProviderID: res.providerID,
		SentAt: time.Now().UTC(),
	}
	if m.transport == transportSMTP {
		// The email went out; the record is for deduplication and
		// operators, who need no working token.
		row.Text, row.HTML = redactToken(row.Text, res.req.Token), redactToken(row.HTML, res.req.Token)
	}
	inserted, err := store{tx}.insert(ctx, row)
	if err != nil || !inserted {
		return err
	}
	_, err = outbox.Append(ctx, tx, EventActivationEmailSent.New(res.req.UserID,
		ActivationEmailSent{UserID: res.req.UserID, MessageID: row.ID, To: row.To}))
	return err
}

// redactToken replaces the token in a body, in every form the templates
// write it (as is, query-escaped in the link, HTML-escaped).
func redactToken(body, token string) string {
	for _, form := range []string{token, url.QueryEscape(token), htmltemplate.HTMLEscapeString(token), htmltemplate.HTMLEscapeString(url.QueryEscape(token))} {
		body = strings.ReplaceAll(body, form, outbox.Redacted)
	}
	return body
}

// maxListed bounds one mailbox listing.
const maxListed = 100

// Messages returns the newest messages (up to 100) in the mailbox for the
// address, ignoring case. Errors: Invalid for a blank address,
// ErrMailboxOff when mail goes out over SMTP.
func (m *Module) Messages(ctx context.Context, to string) ([]Sent, error) {
	to = strings.TrimSpace(to)
	if to == "" {
		return nil, errs.Validation(map[string]string{"to": "is required: the recipient's email address"})
	}
	if m.transport != transportMailbox {
		return nil, ErrMailboxOff
	}
	return store{m.pool}.byRecipient(ctx, to, maxListed)
}
