package telemetry_test

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

// fakeSMTP is a real SMTP server in the test process that can be down
// (421 to every message: the breaker counts it) or refuse one recipient for
// good (550: the message is retried, then parked).
type fakeSMTP struct {
	addr   string
	down   atomic.Bool
	refuse atomic.Value // string: a recipient answered 550
	got    atomic.Int64
}

func startFakeSMTP(t *testing.T) *fakeSMTP {
	t.Helper()
	s := &fakeSMTP{}
	s.refuse.Store("")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = l.Addr().String()
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &fakeSession{s: s}, nil }))
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.ErrorLog = log.New(io.Discard, "", 0)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close(); <-done })
	return s
}

func (s *fakeSMTP) URL() string { return "smtp://" + s.addr + "?tls=none" }

type fakeSession struct{ s *fakeSMTP }

func (x *fakeSession) Reset()        {}
func (x *fakeSession) Logout() error { return nil }
func (x *fakeSession) Mail(string, *smtp.MailOptions) error {
	if x.s.down.Load() {
		return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "service not available"}
	}
	return nil
}
func (x *fakeSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if r := x.s.refuse.Load().(string); r != "" && strings.EqualFold(to, r) {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox"}
	}
	return nil
}
func (x *fakeSession) Data(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	x.s.got.Add(1)
	return nil
}
