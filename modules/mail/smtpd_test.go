package mail_test

import (
	"bytes"
	"crypto/tls"
	"io"
	"log"
	"mime"
	"mime/multipart"
	"net"
	netmail "net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// smtpd is a real SMTP server in the test process. It records every message
// it accepts, can be stopped and started again on the same port (stopped,
// it refuses connections), and can answer RCPT TO with a 5xx on demand.
type smtpd struct {
	t    *testing.T
	addr string

	mu     sync.Mutex
	srv    *smtp.Server
	done   chan struct{}
	got    []received
	reject int         // the code RCPT TO answers with; 0 accepts
	tls    *tls.Config // offered with STARTTLS when set
}

// received is one accepted message.
type received struct {
	From string
	To   []string
	Data []byte
	TLS  bool // the session had upgraded with STARTTLS
}

func mustSMTPD(t *testing.T) *smtpd {
	t.Helper()
	return mustSMTPDWithTLS(t, nil)
}

// mustSMTPDWithTLS starts a server that offers STARTTLS with cfg (if not
// nil).
func mustSMTPDWithTLS(t *testing.T, cfg *tls.Config) *smtpd {
	t.Helper()
	s := &smtpd{t: t, addr: "127.0.0.1:0", tls: cfg}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// URL is CAIRN_SMTP_URL for this server: plain SMTP on loopback, said
// explicitly (tls=none), no login.
func (s *smtpd) URL() string { return "smtp://" + s.addr + "?tls=none" }

// Start listens again on the same address.
func (s *smtpd) Start() {
	s.t.Helper()
	var l net.Listener
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if l, err = net.Listen("tcp", s.addr); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		s.t.Fatalf("smtpd: listen on %s: %v", s.addr, err)
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &session{d: s, conn: c}, nil }))
	srv.Domain = "localhost"
	s.mu.Lock()
	srv.TLSConfig = s.tls
	s.mu.Unlock()
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.ErrorLog = log.New(io.Discard, "", 0)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l) }()
	s.mu.Lock()
	s.addr, s.srv, s.done = l.Addr().String(), srv, done
	s.mu.Unlock()
}

// Stop closes the listener and every open session; safe to call twice.
func (s *smtpd) Stop() {
	s.mu.Lock()
	srv, done := s.srv, s.done
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
		<-done
	}
}

// Reject makes RCPT TO answer code (550, 451, …), or accept with 0.
func (s *smtpd) Reject(code int) {
	s.mu.Lock()
	s.reject = code
	s.mu.Unlock()
}

// Received returns a copy of the accepted messages.
func (s *smtpd) Received() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.got...)
}

// PerRecipient counts accepted messages by recipient.
func (s *smtpd) PerRecipient() map[string]int {
	n := map[string]int{}
	for _, r := range s.Received() {
		for _, to := range r.To {
			n[strings.ToLower(to)]++
		}
	}
	return n
}

type session struct {
	d    *smtpd
	conn *smtp.Conn
	from string
	to   []string
}

func (s *session) Reset()        { s.from, s.to = "", nil }
func (s *session) Logout() error { return nil }
func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.d.mu.Lock()
	reject := s.d.reject
	s.d.mu.Unlock()
	if reject != 0 {
		return &smtp.SMTPError{Code: reject, EnhancedCode: smtp.EnhancedCode{reject / 100, 1, 1}, Message: "not today"}
	}
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.d.mu.Lock()
	_, isTLS := s.conn.TLSConnectionState()
	s.d.got = append(s.d.got, received{From: s.from, To: s.to, Data: b, TLS: isTLS})
	s.d.mu.Unlock()
	return nil
}

// parsed is a received message with its parts decoded.
type parsed struct {
	Header netmail.Header
	Text   string
	HTML   string
}

func parse(t *testing.T, raw []byte) parsed {
	t.Helper()
	m, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("parse message: %v\n%s", err, raw)
	}
	p := parsed{Header: m.Header}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || !strings.HasPrefix(mt, "multipart/") {
		t.Fatalf("message is %q, want multipart/alternative (%v)", m.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		part, err := mr.NextPart() // decodes quoted-printable
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read part: %v", err)
		}
		b, err := io.ReadAll(part)
		if err != nil {
			t.Fatalf("read part: %v", err)
		}
		switch ct, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type")); ct {
		case "text/plain":
			p.Text = string(b)
		case "text/html":
			p.HTML = string(b)
		}
	}
	return p
}
