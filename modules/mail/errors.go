package mail

import "github.com/cairn-dev/cairn/errs"

// The mail module's error contract; match with errors.Is.
var (
	// ErrMailboxOff: the mailbox is read only when Cairn keeps mail instead
	// of sending it (CAIRN_SMTP_URL empty).
	ErrMailboxOff = errs.New(errs.NotFound, "not_found", "the mailbox is off: Cairn sends mail over SMTP (CAIRN_SMTP_URL is set)")
	// ErrMailboxLoopbackOnly: the mailbox holds working activation
	// tokens, so it answers only requests from the machine Cairn runs on.
	ErrMailboxLoopbackOnly = errs.New(errs.Forbidden, "mailbox_loopback_only",
		"the mailbox is a development tool and answers only requests from this machine (loopback); set CAIRN_SMTP_URL to send real mail")
)
