package integration_test

import (
	"bytes"
	"strconv"
	"strings"
	"sync"
	"time"
)

// pubLog records every event a Cairn replica publishes, as its NATS proxy
// forwards it to the server: the proxy reads the client protocol (PUB and
// HPUB) and keeps the subject and Nats-Msg-Id of those to events.> and
// internal.>. This is how a test knows which replica published what and
// when, e.g. that a frozen leader published nothing after it woke up.
type pubLog struct {
	mu   sync.Mutex
	pubs []natsPub
}

// natsPub is one event publish as it reached a NATS server.
type natsPub struct {
	Via     int // replica index
	At      time.Time
	Subject string
	MsgID   string
}

// tap returns the proxy tap for replica via: one protocol parser per
// connection.
func (l *pubLog) tap(via int) func() func([]byte, time.Time) {
	return func() func([]byte, time.Time) {
		p := &natsParser{log: l, via: via, payload: -1}
		return p.feed
	}
}

// Pubs returns a copy of the publishes so far.
func (l *pubLog) Pubs() []natsPub {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]natsPub(nil), l.pubs...)
}

func (l *pubLog) add(p natsPub) {
	l.mu.Lock()
	l.pubs = append(l.pubs, p)
	l.mu.Unlock()
}

// natsParser follows the client side of the NATS protocol: control lines
// end in CRLF; PUB <subj> [reply] <size> and HPUB <subj> [reply] <hdr>
// <total> are followed by that many bytes and a CRLF.
type natsParser struct {
	log     *pubLog
	via     int
	buf     []byte
	subject string
	hdr     int
	payload int // bytes of the message still expected, -1 while reading a line
}

func (p *natsParser) feed(chunk []byte, at time.Time) {
	p.buf = append(p.buf, chunk...)
	for {
		if p.payload >= 0 {
			if len(p.buf) < p.payload+2 {
				return
			}
			if strings.HasPrefix(p.subject, "events.") || strings.HasPrefix(p.subject, "internal.") {
				p.log.add(natsPub{Via: p.via, At: at, Subject: p.subject, MsgID: msgIDOf(p.buf[:p.hdr])})
			}
			p.buf = p.buf[p.payload+2:]
			p.payload = -1
			continue
		}
		i := bytes.Index(p.buf, []byte("\r\n"))
		if i < 0 {
			return
		}
		f := strings.Fields(string(p.buf[:i]))
		p.buf = p.buf[i+2:]
		if len(f) < 3 {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "PUB":
			n, _ := strconv.Atoi(f[len(f)-1])
			p.subject, p.hdr, p.payload = f[1], 0, n
		case "HPUB":
			h, _ := strconv.Atoi(f[len(f)-2])
			n, _ := strconv.Atoi(f[len(f)-1])
			p.subject, p.hdr, p.payload = f[1], h, n
		}
		if len(p.buf) == 0 {
			p.buf = nil // do not keep a large buffer alive
		}
	}
}

// msgIDOf reads Nats-Msg-Id from a NATS/1.0 header block.
func msgIDOf(hdr []byte) string {
	for _, line := range strings.Split(string(hdr), "\r\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(strings.TrimSpace(k), "Nats-Msg-Id") {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
