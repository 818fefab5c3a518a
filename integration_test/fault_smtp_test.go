package integration_test

import (
	"bufio"
	"bytes"
	"io"
	"log"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// mailSink is a real SMTP server in the test process with one listener per
// Cairn replica, so that every email it accepts is attributed to the
// replica that sent it. Plain SMTP without login: Cairn's sender upgrades
// to TLS only when a server offers it.
type mailSink struct {
	mu    sync.Mutex
	got   []sinkMail
	holds map[int]chan struct{} // listeners whose sessions wait at RCPT TO
	held  map[int]int           // sessions waiting now, by listener
	srvs  []*smtp.Server
	urls  []string
	wg    sync.WaitGroup
}

// sinkMail is one accepted message.
type sinkMail struct {
	Via       int       // index of the listener (the replica) it came through
	At        time.Time // when DATA completed
	MessageID string    // without the angle brackets
	To        []string
}

func mustMailSink(t *testing.T, listeners int) *mailSink {
	t.Helper()
	s := &mailSink{holds: map[int]chan struct{}{}, held: map[int]int{}}
	for i := range listeners {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("smtp sink: %v", err)
		}
		srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &sinkSession{s: s, via: i}, nil }))
		srv.Domain = "localhost"
		// A client frozen mid-message loses it, as with a real server.
		srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
		srv.ErrorLog = log.New(io.Discard, "", 0)
		s.srvs = append(s.srvs, srv)
		s.urls = append(s.urls, "smtp://"+l.Addr().String()+"?tls=none") // plain SMTP on loopback, said explicitly
		s.wg.Add(1)
		go func() { defer s.wg.Done(); _ = srv.Serve(l) }()
	}
	t.Cleanup(func() {
		for i := range listeners {
			s.Release(i)
		}
		for _, srv := range s.srvs {
			_ = srv.Close()
		}
		s.wg.Wait()
	})
	return s
}

// URL is CAIRN_SMTP_URL for replica i.
func (s *mailSink) URL(i int) string { return s.urls[i] }

// Mails returns a copy of what was accepted so far.
func (s *mailSink) Mails() []sinkMail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sinkMail(nil), s.got...)
}

// Count is how many messages were accepted.
func (s *mailSink) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

type sinkSession struct {
	s   *mailSink
	via int
	to  []string
}

// Hold makes the sessions on listener via wait at RCPT TO, before any of
// the message is sent, until Release: a test can then be sure the sender
// is in the middle of handling an event when it kills or freezes it.
func (s *mailSink) Hold(via int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.holds[via] == nil {
		s.holds[via] = make(chan struct{})
	}
}

// Release lets held sessions go on.
func (s *mailSink) Release(via int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch := s.holds[via]; ch != nil {
		close(ch)
		delete(s.holds, via)
	}
}

// Held is how many sessions on listener via are waiting now.
func (s *mailSink) Held(via int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held[via]
}

func (x *sinkSession) Reset()                               { x.to = nil }
func (x *sinkSession) Logout() error                        { return nil }
func (x *sinkSession) Mail(string, *smtp.MailOptions) error { return nil }

func (x *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.s.mu.Lock()
	hold := x.s.holds[x.via]
	if hold != nil {
		x.s.held[x.via]++
	}
	x.s.mu.Unlock()
	if hold != nil {
		<-hold
		x.s.mu.Lock()
		x.s.held[x.via]--
		x.s.mu.Unlock()
	}
	x.to = append(x.to, to)
	return nil
}

func (x *sinkSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	h, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(raw))).ReadMIMEHeader()
	if err != nil && len(h) == 0 {
		return err
	}
	id := strings.Trim(strings.TrimSpace(h.Get("Message-Id")), "<>")
	x.s.mu.Lock()
	x.s.got = append(x.s.got, sinkMail{Via: x.via, At: time.Now(), MessageID: id, To: append([]string(nil), x.to...)})
	x.s.mu.Unlock()
	return nil
}
