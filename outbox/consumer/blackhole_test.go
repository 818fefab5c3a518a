package consumer_test

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
)

// blackhole is a TCP proxy to the test database that can stop forwarding
// in both directions while keeping every socket open: to PostgreSQL and to
// the client, the session looks alive, as with a host that froze or whose
// network path was cut without a FIN or RST.
type blackhole struct {
	ln     net.Listener
	target [2]string // network, address
	cut    atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newBlackhole(t *testing.T, dbURL string) *blackhole {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	b := &blackhole{target: [2]string{"tcp", fmt.Sprintf("%s:%d", cfg.ConnConfig.Host, cfg.ConnConfig.Port)}}
	if strings.HasPrefix(cfg.ConnConfig.Host, "/") {
		b.target = [2]string{"unix", filepath.Join(cfg.ConnConfig.Host, fmt.Sprintf(".s.PGSQL.%d", cfg.ConnConfig.Port))}
	}
	if b.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	b.wg.Add(1)
	go b.accept()
	t.Cleanup(b.Close)
	return b
}

func (b *blackhole) accept() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial(b.target[0], b.target[1])
		if err != nil {
			c.Close()
			continue
		}
		b.mu.Lock()
		b.conns = append(b.conns, c, up)
		b.mu.Unlock()
		b.wg.Add(2)
		go b.pump(up, c)
		go b.pump(c, up)
	}
}

// pump copies src to dst until either closes; once cut, what it reads is
// dropped.
func (b *blackhole) pump(dst, src net.Conn) {
	defer b.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !b.cut.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}

// Cut stops forwarding, keeping the sockets open.
func (b *blackhole) Cut() { b.cut.Store(true) }

// Close closes the listener and every socket.
func (b *blackhole) Close() {
	b.ln.Close()
	b.mu.Lock()
	for _, c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// pool returns a pool of its own whose connections go through b.
func (b *blackhole) pool(t *testing.T, dbURL string, params map[string]string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 8
	cfg.ConnConfig.DialFunc = func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", b.ln.Addr().String())
	}
	for k, v := range params {
		cfg.ConnConfig.RuntimeParams[k] = v
	}
	p, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
