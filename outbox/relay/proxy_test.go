package relay_test

import (
	"net"
	"sync"
	"testing"
)

// proxy forwards TCP connections to a target (TCP or Unix socket) and can
// stop forwarding while keeping every socket open, as a path that goes dark
// without a FIN or RST does; what was sent meanwhile is delivered when it
// resumes, as a frozen process's buffered writes are after SIGCONT.
type proxy struct {
	ln            net.Listener
	network, addr string
	mu            sync.Mutex
	paused        bool
	resumed       *sync.Cond
	conns         []net.Conn
	wg            sync.WaitGroup
	closeOnce     sync.Once
	held          int64 // bytes sent towards the target while paused
}

func startProxy(t testing.TB, network, addr string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, network: network, addr: addr}
	p.resumed = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// Addr is host:port to dial instead of the target.
func (p *proxy) Addr() string { return p.ln.Addr().String() }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial(p.network, p.addr)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(up, c, true)
		go p.pipe(c, up, false)
	}
}

func (p *proxy) pipe(dst, src net.Conn, upstream bool) {
	defer p.wg.Done()
	// The reader keeps reading while paused, as a sender's kernel keeps
	// taking what it writes, and counts every byte it holds; the writer
	// forwards in order once resumed.
	chunks := make(chan []byte, 4096)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for c := range chunks {
			p.mu.Lock()
			for p.paused {
				p.resumed.Wait()
			}
			p.mu.Unlock()
			if _, err := dst.Write(c); err != nil {
				for range chunks { // drain so the reader never blocks on a dead writer
				}
				return
			}
		}
		_ = dst.Close()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			if p.paused && upstream {
				p.held += int64(n)
			}
			p.mu.Unlock()
			chunks <- append([]byte(nil), buf[:n]...)
		}
		if err != nil {
			close(chunks)
			<-done
			return
		}
	}
}

// Pause stops forwarding in both directions.
func (p *proxy) Pause() {
	p.mu.Lock()
	p.paused = true
	p.mu.Unlock()
}

// Held returns how many bytes were sent towards the target while paused.
func (p *proxy) Held() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.held
}

// Resume forwards again, what was held first.
func (p *proxy) Resume() {
	p.mu.Lock()
	p.paused = false
	p.mu.Unlock()
	p.resumed.Broadcast()
}

func (p *proxy) close() {
	p.closeOnce.Do(func() {
		p.Resume()
		_ = p.ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			_ = c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
}

func netSplit(addr string) (string, string, error) { return net.SplitHostPort(addr) }
