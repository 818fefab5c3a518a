package testenv

import (
	"io"
	"log"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// FakeSMTP is a real SMTP server in the test process, on loopback, that
// can be down (421 to every message: the mail breaker counts it) or refuse
// recipients for good (550: the message is retried, then parked). Got
// counts the messages accepted.
type FakeSMTP struct {
	Down   atomic.Bool
	Got    atomic.Int64
	refuse atomic.Value // string: "" none, "*" every recipient, else one
	addr   string
}

// StartFakeSMTP starts one, stopped by t's cleanup.
func StartFakeSMTP(tb testing.TB) *FakeSMTP {
	tb.Helper()
	s := &FakeSMTP{}
	s.refuse.Store("")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s.addr = l.Addr().String()
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &fakeSession{s: s}, nil }))
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.ErrorLog = log.New(io.Discard, "", 0)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l) }()
	tb.Cleanup(func() { _ = srv.Close(); <-done })
	return s
}

// URL is the server's address as CAIRN_SMTP_URL takes it.
func (s *FakeSMTP) URL() string { return "smtp://" + s.addr + "?tls=none" }

// Refuse makes the server answer 550 to rcpt (case-insensitive), to every
// recipient with "*", to none with "".
func (s *FakeSMTP) Refuse(rcpt string) { s.refuse.Store(rcpt) }

type fakeSession struct{ s *FakeSMTP }

func (x *fakeSession) Reset()        {}
func (x *fakeSession) Logout() error { return nil }
func (x *fakeSession) Mail(string, *smtp.MailOptions) error {
	if x.s.Down.Load() {
		return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "service not available"}
	}
	return nil
}
func (x *fakeSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if r := x.s.refuse.Load().(string); r == "*" || r != "" && strings.EqualFold(to, r) {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox"}
	}
	return nil
}
func (x *fakeSession) Data(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	x.s.Got.Add(1)
	return nil
}
