package mail

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/errs"
	"github.com/cairn-dev/cairn/outbox"
)

// handleActivationRequested sends the activation email of one
// users.activation_requested.v1, at most once per event id as far as this
// database knows (see the package doc for the crash window). The SMTP call
// comes before the first write, as the consumer runtime asks.
func (m *Module) handleActivationRequested(ctx context.Context, tx pgx.Tx, e outbox.Received[activationRequestedData]) error {
	req := e.Data
	var missing []string
	for _, f := range [][2]string{{"user_id", req.UserID}, {"email", req.Email}, {"token", req.Token}} {
		if strings.TrimSpace(f[1]) == "" {
			missing = append(missing, f[0])
		}
	}
	if len(missing) > 0 {
		return outbox.Permanent(fmt.Errorf("mail: %s %s has no %s", activationRequested, e.ID, strings.Join(missing, ", ")))
	}
	s := store{tx}
	done, err := s.sentFor(ctx, e.ID)
	if err != nil || done {
		return err
	}
	msg, err := renderActivation(m.publicURL, m.publicURL.Hostname(), e.ID, req)
	if err != nil {
		return fmt.Errorf("mail: render activation email: %w", err)
	}
	providerID, err := m.sender.Send(ctx, msg)
	if err != nil {
		return err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("mail: new message id: %w", err)
	}
	row := Sent{
		ID: id.String(), EventID: e.ID, UserID: req.UserID, To: msg.To, Subject: msg.Subject,
		Text: msg.Text, HTML: msg.HTML, Transport: m.transport, ProviderID: providerID,
		SentAt: time.Now().UTC(),
	}
	inserted, err := s.insert(ctx, row)
	if err != nil || !inserted {
		return err
	}
	_, err = outbox.Append(ctx, tx, EventActivationEmailSent.New(req.UserID,
		ActivationEmailSent{UserID: req.UserID, MessageID: row.ID, To: row.To}))
	return err
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
