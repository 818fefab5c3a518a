package mail

import "github.com/cairn-dev/cairn/errs"

// The mail module's error contract; match with errors.Is.
var (
	// ErrMailboxOff: the mailbox is read only when Cairn keeps mail instead
	// of sending it (CAIRN_SMTP_URL empty).
	ErrMailboxOff = errs.New(errs.NotFound, "not_found", "the mailbox is off: Cairn sends mail over SMTP (CAIRN_SMTP_URL is set)")
)
