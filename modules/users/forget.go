package users

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/privacy"
)

// ForgetConsumer anonymises the account of a forgotten person.
const ForgetConsumer = "users_forget"

// forget anonymises the account on privacy.subject_forgotten.v1: its
// username and email become placeholders that name nobody, its password
// hash and activation tokens go. The account row stays (its id is in
// other modules' rows and in the lake), so the id still resolves, to
// nobody. Another id (a customer's, an order's) matches no account and
// changes nothing. Idempotent, hence rebuildable with no reset.
func forget(ctx context.Context, tx pgx.Tx, e outbox.Received[privacy.SubjectForgotten]) error {
	id := e.Data.SubjectID
	if _, err := tx.Exec(ctx, `UPDATE users.accounts SET username = 'forgotten', email = id::text || '@forgotten.invalid', password_hash = ''
		WHERE id::text = $1`, id); err != nil {
		return fmt.Errorf("users: forget %s: %w", id, err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM users.activation_tokens WHERE user_id::text = $1`, id); err != nil {
		return fmt.Errorf("users: forget %s's tokens: %w", id, err)
	}
	return nil
}
