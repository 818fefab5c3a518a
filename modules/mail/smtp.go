package mail

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	netmail "net/mail"
	"net/url"
	"strconv"
	"time"

	"github.com/sony/gobreaker/v2"
	gomail "github.com/wneessen/go-mail"

	"github.com/cairn-dev/cairn/outbox"
)

// The SMTP client's limits and the breaker around it. A send that cannot
// connect, or whose server stops answering, fails within smtpTimeout (per
// phase: dial, then each command). After breakerFailures such failures in a
// row the breaker opens and fails every send at once for breakerOpenFor;
// then one trial send is let through (half-open): success closes it, a
// failure opens it again.
const (
	smtpTimeout     = 10 * time.Second
	breakerFailures = 3
	breakerOpenFor  = 3 * time.Second
)

// testRootCAs, when set (only by tests, through export_test.go), is whom
// senders built afterwards trust for TLS instead of the system's roots.
var testRootCAs *x509.CertPool

// SMTPSender sends mail through an SMTP server, one connection per message,
// behind a circuit breaker. Safe for concurrent use.
type SMTPSender struct {
	opts    []gomail.Option
	host    string
	addr    string // host:port, for messages
	from    string
	breaker *gobreaker.CircuitBreaker[string]
	log     *slog.Logger
}

// NewSMTPSender configures a sender from a CAIRN_SMTP_URL:
// smtp://user:password@host:587 must upgrade to TLS with STARTTLS, and a
// server that does not offer it gets nothing (a STARTTLS stripped on the way
// would otherwise send tokens in clear); smtps://user:password@host:465
// speaks TLS from the start. Only the URL can lower that, explicitly:
// ?tls=opportunistic uses STARTTLS when offered and plain SMTP otherwise,
// ?tls=none never encrypts (a relay on loopback, a test server). With a
// user it authenticates (the strongest mechanism the server offers; PLAIN
// and LOGIN only over TLS or to localhost). The sender address is the URL's
// ?from= parameter, or from. It connects to nothing yet. Errors: a URL,
// parameter or sender address it cannot use.
func NewSMTPSender(rawURL, from string) (*SMTPSender, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Hostname() == "" {
		return nil, fmt.Errorf("mail: CAIRN_SMTP_URL is not a URL like smtp://user:password@host:587")
	}
	q := u.Query()
	for k := range q {
		if k != "from" && k != "tls" {
			return nil, fmt.Errorf("mail: CAIRN_SMTP_URL has the unknown parameter %q; want from= or tls=", k)
		}
	}
	port := 587
	opts := []gomail.Option{gomail.WithTimeout(smtpTimeout)}
	switch u.Scheme {
	case "smtp":
		policy, err := tlsPolicy(q.Get("tls"))
		if err != nil {
			return nil, err
		}
		opts = append(opts, gomail.WithTLSPolicy(policy))
	case "smtps":
		if q.Has("tls") {
			return nil, fmt.Errorf("mail: CAIRN_SMTP_URL: smtps:// is always TLS; tls= is for smtp:// only")
		}
		port = 465
		opts = append(opts, gomail.WithSSL())
	default:
		return nil, fmt.Errorf("mail: CAIRN_SMTP_URL has scheme %q; want smtp or smtps", u.Scheme)
	}
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil || port < 1 || port > 65535 {
			return nil, fmt.Errorf("mail: CAIRN_SMTP_URL has port %q; want 1 to 65535", p)
		}
	}
	opts = append(opts, gomail.WithPort(port))
	if testRootCAs != nil {
		opts = append(opts, gomail.WithTLSConfig(&tls.Config{ServerName: u.Hostname(), RootCAs: testRootCAs, MinVersion: tls.VersionTLS12}))
	}
	if user := u.User.Username(); user != "" {
		pass, _ := u.User.Password()
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover), gomail.WithUsername(user), gomail.WithPassword(pass))
	}
	if f := q.Get("from"); f != "" {
		from = f
	}
	if _, err := netmail.ParseAddress(from); err != nil {
		return nil, fmt.Errorf("mail: sender address %q (CAIRN_SMTP_URL ?from=) is not an email address: %w", from, err)
	}
	s := &SMTPSender{
		opts: opts, host: u.Hostname(), addr: u.Host, from: from,
		log: slog.New(slog.DiscardHandler),
	}
	s.breaker = gobreaker.NewCircuitBreaker[string](gobreaker.Settings{
		Name:        "smtp " + u.Host,
		MaxRequests: 1,
		Timeout:     breakerOpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= breakerFailures },
		// Only a server that is down trips the breaker: a refused message
		// proves it is up.
		IsSuccessful: func(err error) bool { return err == nil || refused(err) },
		IsExcluded:   func(err error) bool { return errors.Is(err, context.Canceled) },
		OnStateChange: func(name string, from, to gobreaker.State) {
			s.log.Warn("smtp circuit breaker", "server", s.addr, "from", from.String(), "to", to.String())
		},
	})
	return s, nil
}

// tlsPolicy reads smtp://'s ?tls=: STARTTLS is required unless the URL says
// otherwise in so many words.
func tlsPolicy(v string) (gomail.TLSPolicy, error) {
	switch v {
	case "", "required":
		return gomail.TLSMandatory, nil
	case "opportunistic":
		return gomail.TLSOpportunistic, nil
	case "none":
		return gomail.NoTLS, nil
	}
	return 0, fmt.Errorf("mail: CAIRN_SMTP_URL has tls=%q; want required (the default), opportunistic or none", v)
}

// Send delivers m and returns the server's reply to the message (it
// usually holds the server's queue id). Errors: outbox.Unavailable when the
// server cannot be reached, times out, answers 4xx or fails the session
// (greeting, TLS, authentication), or while the breaker is open; a plain
// error when the server refused this message with 5xx, or m has an address
// that is not valid.
func (s *SMTPSender) Send(ctx context.Context, m Message) (string, error) {
	msg, err := s.build(m)
	if err != nil {
		return "", err
	}
	reply, err := s.breaker.Execute(func() (string, error) { return s.send(ctx, msg) })
	switch {
	case err == nil:
		return reply, nil
	case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
		return "", outbox.Unavailable(fmt.Errorf("mail: smtp %s: %w after %d failures in a row", s.addr, err, breakerFailures))
	case ctx.Err() != nil:
		return "", fmt.Errorf("mail: smtp %s: %w", s.addr, ctx.Err())
	case refused(err):
		return "", fmt.Errorf("mail: smtp %s refused the message: %w", s.addr, err)
	default:
		return "", outbox.Unavailable(fmt.Errorf("mail: smtp %s: %w", s.addr, err))
	}
}

func (s *SMTPSender) build(m Message) (*gomail.Msg, error) {
	msg := gomail.NewMsg()
	if err := msg.From(s.from); err != nil {
		return nil, fmt.Errorf("mail: sender address: %w", err)
	}
	if err := msg.To(m.To); err != nil {
		return nil, fmt.Errorf("mail: recipient address: %w", err)
	}
	msg.Subject(m.Subject)
	msg.SetMessageIDWithValue(m.ID)
	msg.SetDate()
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	return msg, nil
}

func (s *SMTPSender) send(ctx context.Context, msg *gomail.Msg) (string, error) {
	c, err := gomail.NewClient(s.host, s.opts...)
	if err != nil {
		return "", fmt.Errorf("configure client: %w", err)
	}
	err = c.DialAndSendWithContext(ctx, msg)
	if err != nil && !msg.IsDelivered() {
		return "", err
	}
	if err != nil {
		// The server took the message; only RSET or QUIT failed after it.
		// Reporting a failure would send it twice.
		s.log.Warn("smtp: message accepted, closing the session failed", "server", s.addr, "err", err)
	}
	if r := msg.ServerResponse(); r != "" {
		return r, nil
	}
	return msg.GetMessageID(), nil
}

// refused reports whether the server refused the message itself with a
// permanent (5xx) reply to MAIL FROM, RCPT TO or DATA. Everything else that
// can go wrong (no connection, a timeout, a 4xx, a failed greeting, TLS
// handshake or login) is about the server or the session, and is as likely
// to hit the next message: the server is treated as unavailable.
func refused(err error) bool {
	var se *gomail.SendError
	if !errors.As(err, &se) {
		return false
	}
	switch se.Reason {
	case gomail.ErrSMTPMailFrom, gomail.ErrSMTPRcptTo, gomail.ErrSMTPData, gomail.ErrSMTPDataClose:
		return se.ErrorCode() >= 500
	case gomail.ErrNoUnencoded:
		return true
	}
	return false
}
