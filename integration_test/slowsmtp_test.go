package integration_test

import (
	"io"
	"log"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// slowSMTP is a real SMTP server in the test process that takes delay to
// answer each message, as an overloaded mail relay would. It counts the
// messages it accepted and the most sessions it had open at once.
type slowSMTP struct {
	srv      *smtp.Server
	addr     string
	delay    time.Duration
	got      atomic.Int64
	open     atomic.Int64
	mostOpen atomic.Int64
}

func startSlowSMTP(tb testing.TB, delay time.Duration) *slowSMTP {
	tb.Helper()
	s := &slowSMTP{delay: delay}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s.addr = l.Addr().String()
	s.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		n := s.open.Add(1)
		for m := s.mostOpen.Load(); n > m && !s.mostOpen.CompareAndSwap(m, n); m = s.mostOpen.Load() {
		}
		return &slowSession{s: s}, nil
	}))
	s.srv.Domain = "localhost"
	s.srv.MaxRecipients = 1
	s.srv.ReadTimeout, s.srv.WriteTimeout = 30*time.Second, 30*time.Second
	s.srv.ErrorLog = log.New(io.Discard, "", 0)
	done := make(chan struct{})
	go func() { defer close(done); _ = s.srv.Serve(l) }()
	tb.Cleanup(func() { _ = s.srv.Close(); <-done })
	return s
}

// URL is CAIRN_SMTP_URL for this server: plain SMTP on loopback, said
// explicitly (STARTTLS is required otherwise).
func (s *slowSMTP) URL() string { return "smtp://" + s.addr + "?tls=none" }

type slowSession struct{ s *slowSMTP }

func (x *slowSession) Reset()                               {}
func (x *slowSession) Logout() error                        { x.s.open.Add(-1); return nil }
func (x *slowSession) Mail(string, *smtp.MailOptions) error { return nil }
func (x *slowSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (x *slowSession) Data(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	time.Sleep(x.s.delay)
	x.s.got.Add(1)
	return nil
}
