package mail

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/privacy"
)

// ForgetConsumer drops a forgotten person's messages.
const ForgetConsumer = "mail_forget"

// forget deletes the messages sent (or kept in the mailbox) for the person
// on privacy.subject_forgotten.v1: their address and activation links.
// Idempotent, hence rebuildable with no reset.
func forget(ctx context.Context, tx pgx.Tx, e outbox.Received[privacy.SubjectForgotten]) error {
	if _, err := tx.Exec(ctx, `DELETE FROM mail.messages WHERE user_id = $1`, e.Data.SubjectID); err != nil {
		return fmt.Errorf("mail: forget %s: %w", e.Data.SubjectID, err)
	}
	return nil
}
