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
	open   chan struct{}
}

func newGate() *gate { return &gate{open: make(chan struct{})} }

func (g *gate) isClosed() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed
}

// close pauses the consumer and reports whether me is the prober.
func (g *gate) close(me any) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.closed {
		g.closed, g.prober, g.open = true, me, make(chan struct{})
	}
	return g.prober == me
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
