// Package privacy forgets people although events are kept for ever
// (crypto-shredding). The fields the event catalog tags personal are
// sealed, in the lake and in its Parquet exports, with a key of the person
// they belong to (outbox.SealValue: AES-256-GCM); the keys live in
// privacy.subject_keys, and queries and replays open the fields while the
// key exists. Forget destroys the key, so every sealed copy becomes
// unreadable at once, and publishes privacy.subject_forgotten.v1 so that
// modules erase their own copies; the Forgetter then removes what is left
// in clear: the person's messages in the NATS streams (the lake knows
// their stream sequences), their data in outbox rows not yet moved into
// the lake, in dead letters and in dry-run records.
//
// This package does not import NATS: the streams are reached through
// StreamEraser (outbox/lake/streamseq implements it).
package privacy

import (
	"time"

	"github.com/cairn-dev/cairn/outbox"
)

// EventSubjectForgotten is the platform's event that a person was
// forgotten: every module that keeps a copy of their personal data erases
// it (users anonymises the account, mail drops the person's messages). Its
// key is the person's id. Outside systems that keep personal data read it
// too.
var EventSubjectForgotten = outbox.Declare[SubjectForgotten](outbox.EventSpec{
	Type: "privacy.subject_forgotten.v1", Visibility: outbox.Public,
	Description: "A person was forgotten: erase every copy of their personal data.",
})

// SubjectForgotten is the data of privacy.subject_forgotten.v1.
type SubjectForgotten struct {
	// SubjectID is the person's id, as personal fields name it (a user id,
	// an account id, a customer id).
	SubjectID   string    `json:"subject_id"`
	ForgottenAt time.Time `json:"forgotten_at"`
}
