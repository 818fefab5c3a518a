// Package paymentstest is a fake of the outside payment gateway for tests:
// a real HTTP server on loopback speaking payments.HTTPGateway's protocol,
// which a test can make slow, down, refuse voids or decline, and which
// counts what it did per idempotency key, so a test can check that no
// payment was authorised twice and every void arrived.
package paymentstest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Gateway is the fake. Its zero knobs authorise everything at once.
type Gateway struct {
	URL string // base URL for CAIRN_PAYMENTS_URL

	srv          *httptest.Server
	declineAbove atomic.Int64
	down         atomic.Bool
	refuseVoids  atomic.Bool
	delay        atomic.Int64 // ns before answering
	mu           sync.Mutex
	keys         map[string]*Key
	seq          int
}

// Key is what the gateway did under one idempotency key.
type Key struct {
	Amount   int64
	Currency string
	Status   string // authorized, declined or voided; "" if never asked to authorise
	ID       string
	// AuthorizeCalls counts authorisation requests; Authorizations the
	// authorisations made (a repeat makes none).
	AuthorizeCalls, Authorizations int
	// VoidCalls counts void requests; Voids the authorisations voided.
	VoidCalls, Voids int
}

// Start runs a gateway until the test ends.
func Start(tb testing) *Gateway {
	g := &Gateway{keys: map[string]*Key{}}
	g.declineAbove.Store(1 << 62)
	g.srv = httptest.NewServer(http.HandlerFunc(g.serve))
	g.URL = g.srv.URL
	tb.Cleanup(g.srv.Close)
	return g
}

// testing is the part of testing.TB Start needs.
type testing interface{ Cleanup(func()) }

// DeclineAbove makes it decline amounts above limit minor units.
func (g *Gateway) DeclineAbove(limit int64) { g.declineAbove.Store(limit) }

// SetDown makes it answer every request 503 (true) or serve again.
func (g *Gateway) SetDown(down bool) { g.down.Store(down) }

// RefuseVoids makes it refuse every void with 422 (true) or void again.
func (g *Gateway) RefuseVoids(refuse bool) { g.refuseVoids.Store(refuse) }

// SetDelay makes it wait d before answering each request.
func (g *Gateway) SetDelay(d time.Duration) { g.delay.Store(int64(d)) }

// Key returns a copy of what it did under key (zero if nothing).
func (g *Gateway) Key(key string) Key {
	g.mu.Lock()
	defer g.mu.Unlock()
	if k, ok := g.keys[key]; ok {
		return *k
	}
	return Key{}
}

// Keys returns a copy of every key's record.
func (g *Gateway) Keys() map[string]Key {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[string]Key, len(g.keys))
	for k, v := range g.keys {
		out[k] = *v
	}
	return out
}

type authorizeRequest struct {
	Amount    int64  `json:"amount"`
	Currency  string `json:"currency"`
	Reference string `json:"reference"`
}

type answer struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

func (g *Gateway) serve(w http.ResponseWriter, r *http.Request) {
	if d := time.Duration(g.delay.Load()); d > 0 {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
	}
	if g.down.Load() {
		http.Error(w, `{"error":"down for maintenance"}`, http.StatusServiceUnavailable)
		return
	}
	key := r.Header.Get("Idempotency-Key")
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/authorizations":
		var req authorizeRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, `{"error":"bad json"}`, http.StatusBadRequest)
			return
		}
		g.reply(w, http.StatusCreated, g.authorize(key, req))
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/authorizations/") && strings.HasSuffix(r.URL.Path, "/void"):
		key = strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/authorizations/"), "/void")
		if g.refuseVoids.Load() {
			g.mu.Lock()
			g.key(key).VoidCalls++
			g.mu.Unlock()
			http.Error(w, `{"error":"void refused"}`, http.StatusUnprocessableEntity)
			return
		}
		a, found := g.void(key)
		if !found {
			http.Error(w, `{"error":"no authorization under this key"}`, http.StatusNotFound)
			return
		}
		g.reply(w, http.StatusOK, a)
	default:
		http.NotFound(w, r)
	}
}

func (g *Gateway) key(key string) *Key {
	k, ok := g.keys[key]
	if !ok {
		k = &Key{}
		g.keys[key] = k
	}
	return k
}

// authorize authorises or declines once per key; a request without a key
// is a new payment every time, as at a real gateway.
func (g *Gateway) authorize(key string, req authorizeRequest) answer {
	g.mu.Lock()
	defer g.mu.Unlock()
	if key == "" {
		g.seq++
		key = fmt.Sprintf("no-key-%d", g.seq)
	}
	k := g.key(key)
	k.AuthorizeCalls++
	if k.Status == "" {
		g.seq++
		k.Amount, k.Currency, k.ID = req.Amount, req.Currency, fmt.Sprintf("auth_%d", g.seq)
		k.Status = "authorized"
		if req.Amount > g.declineAbove.Load() {
			k.Status = "declined"
		} else {
			k.Authorizations++
		}
	}
	a := answer{ID: k.ID, Status: k.Status}
	if k.Status == "declined" {
		a.Reason = "insufficient funds"
	}
	return a
}

func (g *Gateway) void(key string) (answer, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	k := g.key(key)
	k.VoidCalls++
	switch k.Status {
	case "":
		// Nothing was authorised: the key is closed, so a later
		// authorisation under it is refused as voided.
		k.Status = "voided"
		return answer{}, false
	case "authorized":
		k.Status = "voided"
		k.Voids++
	}
	return answer{ID: k.ID, Status: "voided"}, true
}

func (g *Gateway) reply(w http.ResponseWriter, status int, a answer) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(a)
}
