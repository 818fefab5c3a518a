package users

import (
	"time"

	"github.com/cairn-dev/cairn/outbox/lake"
)

// userState is a user as the lake folds it from the module's events
// (GET /api/v1/lake/subjects/:id/state).
type userState struct {
	Username    string     `json:"username"`
	Email       string     `json:"email"`
	Status      string     `json:"status"`
	CreatedAt   time.Time  `json:"created_at"`
	ActivatedAt *time.Time `json:"activated_at,omitempty"`
}

// registerFold tells the lake how a user's state follows from its events.
func registerFold(f *lake.Folds) error {
	return lake.Fold(f, "users.user",
		lake.On(EventAccountCreated, func(s *userState, _ lake.Event, d AccountCreated) {
			s.Username, s.Email, s.Status, s.CreatedAt = d.Username, d.Email, StatusPending, d.CreatedAt
		}),
		lake.On(EventAccountActivated, func(s *userState, _ lake.Event, d AccountActivated) {
			at := d.ActivatedAt
			s.Status, s.ActivatedAt = StatusActive, &at
		}),
	)
}
