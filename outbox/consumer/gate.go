package consumer

import (
	"context"
	"sync"
)

// gate pauses a whole consumer while an outside system is down: the lane
// that found it down (the prober) retries slowly, every other lane waits,
// and the prober's first success opens the gate again.
type gate struct {
	mu     sync.Mutex
	closed bool
	prober any
	reason string // what the prober found down
	open   chan struct{}
}

func newGate() *gate { return &gate{open: make(chan struct{})} }

func (g *gate) isClosed() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed
}

// close pauses the consumer because of reason and reports whether me is
// the prober.
func (g *gate) close(me any, reason string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.closed {
		g.closed, g.prober, g.open = true, me, make(chan struct{})
	}
	if g.prober == me {
		g.reason = reason
	}
	return g.prober == me
}

// why is the reason the gate is closed, cut to a line.
func (g *gate) why() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.reason) > 200 {
		return g.reason[:200] + "…"
	}
	return g.reason
}

// reopen resumes the consumer if me is the prober.
func (g *gate) reopen(me any) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed && g.prober == me {
		g.closed, g.prober = false, nil
		close(g.open)
	}
}

// wait blocks while the gate is closed by someone other than me.
func (g *gate) wait(ctx context.Context, me any) bool {
	for {
		g.mu.Lock()
		if !g.closed || g.prober == me {
			g.mu.Unlock()
			return true
		}
		ch := g.open
		g.mu.Unlock()
		select {
		case <-ctx.Done():
			return false
		case <-ch:
		}
	}
}
