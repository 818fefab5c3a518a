package testenv

import (
	"errors"
	"net"
	"sync"
	"testing"
	"time"
)

// Proxy is a TCP proxy on loopback that a test can blackhole: it stops
// forwarding in both directions while keeping every socket open, as a
// network partition or a frozen switch would (no FIN, no RST), and heals
// later, delivering what was held back, as TCP retransmission would.
//
// What it cannot imitate: both legs are healthy loopback sockets, so the
// kernel keeps acknowledging data and answering keepalives on either side.
// TCP-level timeouts (keepalive, tcp_user_timeout) therefore never fire
// through it; only deadlines a program keeps by its own clock do. New
// connections made while blackholed are accepted but get no answer, like a
// SYN that is never answered but with the connect itself succeeding.
type Proxy struct {
	ln      net.Listener
	network string // of the target: "tcp" or "unix"
	target  string

	mu     sync.Mutex
	open   map[net.Conn]struct{}
	healed chan struct{} // closed while forwarding
	closed bool
	wg     sync.WaitGroup
	tap    func() func(chunk []byte, at time.Time)
}

// MustProxy listens on a free loopback port and forwards each connection to
// target (network "tcp" or "unix"); it is closed when the test ends. tap,
// if not nil, is called for each new connection and returns a function that
// is given every chunk forwarded from the client to the target, when it is
// forwarded (so never while blackholed).
func MustProxy(tb testing.TB, network, target string, tap func() func(chunk []byte, at time.Time)) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("testenv: proxy listen: %v", err)
	}
	healed := make(chan struct{})
	close(healed)
	p := &Proxy{ln: ln, network: network, target: target, open: map[net.Conn]struct{}{}, healed: healed, tap: tap}
	p.wg.Add(1)
	go p.accept()
	tb.Cleanup(p.Close)
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Blackhole stops forwarding, keeping every connection open.
func (p *Proxy) Blackhole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.healed:
		p.healed = make(chan struct{})
	default: // already blackholed
	}
}

// Heal forwards again, starting with what was held back.
func (p *Proxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.healed:
	default:
		close(p.healed)
	}
}

// Close stops listening and closes every connection; safe to call twice.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	_ = p.ln.Close()
	for c := range p.open {
		_ = c.Close()
	}
	select {
	case <-p.healed:
	default:
		close(p.healed)
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// waitHealed blocks while the proxy is blackholed.
func (p *Proxy) waitHealed() {
	p.mu.Lock()
	ch := p.healed
	p.mu.Unlock()
	<-ch
}

// track records an open socket; false if the proxy is closing.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		_ = c.Close()
		return false
	}
	p.open[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.open, c)
	p.mu.Unlock()
	_ = c.Close()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if !p.track(c) {
			return
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	p.waitHealed()
	upstream, err := net.DialTimeout(p.network, p.target, 5*time.Second)
	if err != nil {
		p.untrack(client)
		return
	}
	if !p.track(upstream) {
		p.untrack(client)
		return
	}
	var tap func([]byte, time.Time)
	if p.tap != nil {
		tap = p.tap()
	}
	p.wg.Add(2)
	go p.pump(client, upstream, tap)
	go p.pump(upstream, client, nil)
}

// pump copies src to dst. While blackholed it holds the chunk it read and
// stops reading, so the kernel buffers fill and the sender stalls; an end
// of stream or error is passed on (by closing both sockets) only once
// healed, so a close never crosses a partition either.
func (p *Proxy) pump(src, dst net.Conn, tap func([]byte, time.Time)) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		p.waitHealed()
		if n > 0 {
			if tap != nil {
				tap(buf[:n], time.Now())
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				err = werr
			}
		}
		if err != nil {
			p.untrack(src)
			p.untrack(dst)
			return
		}
	}
}
