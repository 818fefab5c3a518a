// Package mail sends the emails other modules ask for by event. Today that
// is one: on users.activation_requested.v1 (internal, it carries the
// activation token) it sends "Activate your Cairn account" and publishes
// mail.activation_email_sent.v1. It owns schema mail.
//
// Transport. With CAIRN_SMTP_URL set, mail goes out over SMTP (smtp://
// requires STARTTLS unless the URL says ?tls=opportunistic or ?tls=none,
// smtps:// is implicit TLS) through a circuit breaker; see SMTPSender. The
// record of an email sent keeps no working token. With CAIRN_SMTP_URL
// empty, Cairn is in development mode for mail: nothing leaves the process,
// the email is kept in the mailbox, table mail.messages, readable at GET
// /api/v1/mail/messages?to=<address>. The mailbox shows the whole email,
// working activation token included, so it answers only requests whose TCP
// peer is on this machine (loopback): `make run` and a browser beside it
// need no configuration, and nobody else can take over a pending account.
// In SMTP mode the endpoint answers 404.
//
// Delivery guarantees. Handling is two-phase (outbox.Effect): first the
// email is sent, outside any transaction and holding no database
// connection, so a slow SMTP server cannot take connections from the API;
// then, in the consumer runtime's transaction (outbox/consumer), which
// records the event as handled, the message row and the
// mail.activation_email_sent.v1 event are committed. The first phase looks
// the event id up in mail.messages and sends nothing if the email was
// already sent, and checks right before sending that this replica still
// holds the consumer's lease. That leaves one window: an email the SMTP
// server accepted whose transaction then fails to commit (crash, lost
// database, a takeover) is sent again when the event is redelivered. A
// failed commit retried within the same delivery reuses the send instead.
// Delivery to the SMTP server is therefore at least once (the copies share
// one Message-ID, which lets some mail systems fold them); delivery to the
// mailbox is exactly once, because there the row is the delivery.
//
// Failures. When the SMTP server cannot be reached or times out, answers
// 4xx, fails the session (greeting, TLS, login), or while the breaker is
// open, the handler returns outbox.Unavailable: the runtime pauses the
// consumer and retries slowly, in order, without using up attempts. A 5xx
// answer to the message itself (MAIL FROM, RCPT TO, DATA) is an ordinary
// error: retried, then parked as a dead letter after MaxAttempts. A request
// that can never be sent (its data does not decode, or lacks the user id,
// the address or the token) is parked at once (outbox.Permanent).
package mail

import (
	"embed"
	"fmt"
	"log/slog"
	"net/url"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/privacy"
)

// Consumer is the durable consumer of the activation handler. It is a
// contract: renaming it consumes the whole history again.
const Consumer = "mail_activation_email"

// MaxAttempts is how often an event that fails with an ordinary error is
// tried before it is parked as a dead letter.
const MaxAttempts = 5

// Module is the mail module's facade.
type Module struct {
	pool      *pgxpool.Pool
	log       *slog.Logger
	sender    Sender
	transport string // "smtp" or "mailbox"
	publicURL *url.URL
}

//go:embed migrations/*.sql
var migrations embed.FS

// Definition registers the module with the app (app/modules.go).
var Definition = modules.Define("mail", migrations, New)

// New builds the module from d.Config (CAIRN_SMTP_URL, CAIRN_PUBLIC_URL),
// registers its routes and adds its handler to d.Consumers. Errors: a
// CAIRN_SMTP_URL or CAIRN_PUBLIC_URL it cannot use, or a subscription the
// catalog refuses.
func New(d modules.Deps) (*Module, error) {
	public, err := url.Parse(d.Config.PublicURL)
	if err != nil || public.Host == "" {
		return nil, fmt.Errorf("mail: CAIRN_PUBLIC_URL %q is not an absolute URL", d.Config.PublicURL)
	}
	m := &Module{pool: d.Pool, log: d.Logger("mail"), sender: Mailbox{}, transport: transportMailbox, publicURL: public}
	if d.Config.SMTPURL != "" {
		s, err := NewSMTPSender(d.Config.SMTPURL, "no-reply@"+public.Hostname())
		if err != nil {
			return nil, err
		}
		s.log = m.log
		m.sender, m.transport = s, transportSMTP
	}
	if m.transport == transportMailbox {
		m.log.Info("no CAIRN_SMTP_URL: emails are kept in the mailbox, readable from this machine only",
			"mailbox", public.JoinPath("/api/v1/mail/messages").String()+"?to=<address>")
	}
	d.Route(m.routes)
	err = outbox.HandleEffect(d.Consumers, Consumer, activationRequested, m.sendActivation, m.recordActivation,
		outbox.MaxAttempts(MaxAttempts), outbox.EffectfulReplay())
	if err == nil {
		err = outbox.Handle(d.Consumers, ForgetConsumer, privacy.EventSubjectForgotten, forget, outbox.RebuildableWith(nil))
	}
	if err != nil {
		return nil, fmt.Errorf("mail: %w", err)
	}
	return m, nil
}

// Transport is "smtp" when CAIRN_SMTP_URL is set and "mailbox" otherwise.
func (m *Module) Transport() string { return m.transport }

const (
	transportSMTP    = "smtp"
	transportMailbox = "mailbox"
)
