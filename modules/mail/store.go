package mail

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/modules"
)

type store struct{ db modules.DBTX }

// Sent is one email the module sent or kept in the mailbox.
type Sent struct {
	ID         string
	EventID    string
	UserID     string
	To         string
	Subject    string
	Text       string
	HTML       string
	Transport  string // "smtp" or "mailbox"
	ProviderID string
	SentAt     time.Time
}

func (s store) sentFor(ctx context.Context, eventID string) (bool, error) {
	var ok bool
	err := s.db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM mail.messages WHERE event_id = $1)`, eventID).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("mail: look up event %s: %w", eventID, err)
	}
	return ok, nil
}

// insert records m; inserted is false when a message for its event is
// already there (a concurrent delivery of the same event committed first).
func (s store) insert(ctx context.Context, m Sent) (inserted bool, err error) {
	tag, err := s.db.Exec(ctx, `INSERT INTO mail.messages
		(id, event_id, user_id, to_address, subject, text_body, html_body, transport, provider_id, sent_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, nullif($9, ''), $10)
		ON CONFLICT (event_id) DO NOTHING`,
		m.ID, m.EventID, m.UserID, m.To, m.Subject, m.Text, m.HTML, m.Transport, m.ProviderID, m.SentAt)
	if err != nil {
		return false, fmt.Errorf("mail: record message: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// byRecipient returns up to limit messages to the address, ignoring case,
// newest first.
func (s store) byRecipient(ctx context.Context, to string, limit int) ([]Sent, error) {
	rows, err := s.db.Query(ctx, `SELECT id::text, event_id::text, user_id, to_address, subject, text_body, html_body,
			transport, coalesce(provider_id, ''), sent_at
		FROM mail.messages WHERE lower(to_address) = lower($1)
		ORDER BY sent_at DESC, id DESC LIMIT $2`, to, limit)
	if err != nil {
		return nil, fmt.Errorf("mail: read messages: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Sent, error) {
		var m Sent
		err := r.Scan(&m.ID, &m.EventID, &m.UserID, &m.To, &m.Subject, &m.Text, &m.HTML, &m.Transport, &m.ProviderID, &m.SentAt)
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("mail: read messages: %w", err)
	}
	return out, nil
}
