package integration_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-dev/cairn/outbox"
)

// ordersAPI calls the HTTP API of whichever cairn process is up now (a
// process killed and started again listens on another port).
type ordersAPI struct {
	base   atomic.Pointer[string] // http://host:port/api/v1
	client *http.Client
	token  string
}

func newOrdersAPI(base, token string) *ordersAPI {
	a := &ordersAPI{client: &http.Client{Timeout: 10 * time.Second}, token: token}
	a.point(base)
	return a
}

// point sends later calls to the process at base (http://host:port).
func (a *ordersAPI) point(base string) {
	b := base + "/api/v1"
	a.base.Store(&b)
}

// call sends a JSON request and decodes a JSON answer into out (if not
// nil). A transport failure is returned as an error with status 0: the
// outcome is unknown.
func (a *ordersAPI) call(method, path string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, *a.base.Load()+path, rd)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: %w: %s", method, path, err, raw)
		}
	}
	if resp.StatusCode >= 300 {
		return resp.StatusCode, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, nil
}

// must is call that fails the test on anything but want.
func (a *ordersAPI) must(t testing.TB, want int, method, path string, body, out any) {
	t.Helper()
	if status, err := a.call(method, path, body, out); status != want {
		t.Fatalf("%s %s: want %d, got %d: %v", method, path, want, status, err)
	}
}

type ordersMoney struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

func eur(amount int64) ordersMoney { return ordersMoney{amount, "EUR"} }

type ordersLine struct {
	SKU      string `json:"sku"`
	Quantity int64  `json:"quantity"`
}

// ordersKnown waits until the orders module knows the customers and SKUs
// (from their events): it prices orders from its own copies.
func ordersKnown(t testing.TB, pool *pgxpool.Pool, customers, skus int) {
	t.Helper()
	waitUntil(t, 60*time.Second, "the orders module to know every customer and SKU", func() bool {
		var c, s int
		err := pool.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM orders.customers), (SELECT count(*) FROM orders.prices)`).Scan(&c, &s)
		return err == nil && c >= customers && s >= skus
	})
}

// ordersSettled waits until nothing moves any more: no order pending, no
// saga running or stuck and no timer set, every durable consumer of both
// streams caught up (unless js is nil), and the streams and the saga
// history unchanged for quiet. It returns how long that took.
func ordersSettled(t testing.TB, pool *pgxpool.Pool, js jetstream.JetStream, within, quiet time.Duration) time.Duration {
	t.Helper()
	ctx := context.Background()
	start := time.Now()
	var last string
	var since time.Time
	var seen []string // the last distinct states, for the failure message
	for time.Since(start) < within {
		now, why := ordersActivity(ctx, pool, js)
		if s := now + why; len(seen) == 0 || seen[len(seen)-1] != s {
			seen = append(seen, time.Since(start).Round(time.Second).String()+": "+s)
			if len(seen) > 12 {
				seen = seen[1:]
			}
		}
		switch {
		case why != "":
			last, since = why, time.Time{}
		case now != last || since.IsZero():
			last, since = now, time.Now()
		case time.Since(since) >= quiet:
			return time.Since(start)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("not settled after %s: %s; the last states:\n%s", within, last, strings.Join(seen, "\n"))
	return 0
}

// ordersActivity describes the state of the work ("" why when nothing is
// pending), for ordersSettled to compare over time.
func ordersActivity(ctx context.Context, pool *pgxpool.Pool, js jetstream.JetStream) (state, why string) {
	var pending, open, timers, hist int64
	err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM orders.orders WHERE status = 'pending'),
		(SELECT count(*) FROM saga.instances WHERE status IN ('running', 'stuck')),
		(SELECT count(*) FROM saga.timers), (SELECT coalesce(max(seq), 0) FROM saga.history)`).Scan(&pending, &open, &timers, &hist)
	if err != nil {
		return "", "database: " + err.Error()
	}
	if pending+open+timers > 0 {
		return "", fmt.Sprintf("%d orders pending, %d sagas running or stuck, %d timers", pending, open, timers)
	}
	state = fmt.Sprintf("history %d", hist)
	if js == nil {
		return state, ""
	}
	for _, stream := range []string{outbox.PublicStream, outbox.InternalStream} {
		s, err := js.Stream(ctx, stream)
		if err != nil {
			return "", "stream: " + err.Error()
		}
		info, err := s.Info(ctx)
		if err != nil {
			return "", "stream: " + err.Error()
		}
		state += fmt.Sprintf(", %s at %d", stream, info.State.LastSeq)
		for name := range s.ConsumerNames(ctx).Name() {
			c, err := s.Consumer(ctx, name)
			if err != nil {
				return "", "consumer: " + err.Error()
			}
			ci, err := c.Info(ctx)
			if err != nil {
				return "", "consumer: " + err.Error()
			}
			if ci.NumPending > 0 || ci.NumAckPending > 0 {
				return "", fmt.Sprintf("consumer %s has %d pending, %d unacked", name, ci.NumPending, ci.NumAckPending)
			}
		}
	}
	return state, ""
}
