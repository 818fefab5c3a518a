package integration_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/config"
)

// sseEvent is one Server-Sent Event.
type sseEvent struct {
	ID, Event string
	Data      map[string]any
}

// follow opens an order's updates and returns the events until the server
// ends the stream (or within, failing).
func (f *ordersFixture) follow(id, lastEventID string, within time.Duration) (events []sseEvent, header http.Header) {
	f.t.Helper()
	req, _ := http.NewRequest("GET", f.URL+"/api/v1/orders/"+id+"/updates", nil)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	client := &http.Client{Timeout: within}
	resp, err := client.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		f.t.Fatalf("updates: %d", resp.StatusCode)
	}
	var cur sseEvent
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		l := sc.Text()
		switch {
		case l == "":
			if cur.Event != "" {
				events = append(events, cur)
			}
			cur = sseEvent{}
		case strings.HasPrefix(l, "id: "):
			cur.ID = strings.TrimPrefix(l, "id: ")
		case strings.HasPrefix(l, "event: "):
			cur.Event = strings.TrimPrefix(l, "event: ")
		case strings.HasPrefix(l, "data: "):
			if err := json.Unmarshal([]byte(strings.TrimPrefix(l, "data: ")), &cur.Data); err != nil {
				f.t.Fatal(err)
			}
		}
	}
	if err := sc.Err(); err != nil {
		f.t.Fatalf("the stream did not end by itself: %v (events so far %v)", err, events)
	}
	return events, resp.Header
}

// A client learns an order's outcome from its updates: one event per
// status change, and the stream ends at the outcome. A stream opened on a
// decided order replays its history and ends; Last-Event-ID resumes.
func TestOrderUpdatesEndAtTheOutcome(t *testing.T) {
	f := newOrdersFixture(t, 30*time.Second)
	c := f.customer(10_000)
	f.item("apple", 150, 10)
	f.Drain()
	f.gw.SetDown(true)
	id := f.place(c, ordersLine{"apple", 1})
	done := make(chan []sseEvent, 1)
	go func() {
		evs, h := f.follow(id, "", 30*time.Second)
		if h.Get("Content-Type") != "text/event-stream" {
			t.Errorf("content type %q", h.Get("Content-Type"))
		}
		done <- evs
	}()
	time.Sleep(500 * time.Millisecond) // the stream is open, the order pending
	f.gw.SetDown(false)
	evs := <-done
	if len(evs) != 2 || evs[0].Data["to"] != "pending" || evs[0].Data["from"] != nil || evs[1].Data["to"] != "approved" || evs[1].Data["from"] != "pending" || evs[1].ID != "2" {
		t.Fatalf("updates: %+v", evs)
	}
	if again, _ := f.follow(id, "", 5*time.Second); len(again) != 2 {
		t.Errorf("replay: %+v", again)
	}
	if rest, _ := f.follow(id, "1", 5*time.Second); len(rest) != 1 || rest[0].Data["to"] != "approved" {
		t.Errorf("resumed after 1: %+v", rest)
	}

	// Cancelled: the stream of an approved order with a cancel pending
	// goes on until the cancellation.
	f.must(f.API("POST", "/orders/"+id+"/cancel", nil), 202)
	evs, _ = f.follow(id, "2", 30*time.Second)
	if len(evs) != 1 || evs[0].Data["to"] != "cancelled" || evs[0].Data["reason"] != "cancelled_by_customer" {
		t.Errorf("after the cancel: %+v", evs)
	}
	if r := f.API("GET", "/orders/01a22ec9-d42d-7adf-a89f-44ff7bda7b0a/updates", nil); r.Status != 404 {
		t.Errorf("updates of an unknown order: %d %s", r.Status, r.Raw)
	}
}

// An open stream ends when the app shuts down, instead of holding the
// shutdown until its timeout (20 s here): Close returns before that, and
// the client sees the stream end (and may reconnect with Last-Event-ID).
func TestOrderUpdatesEndOnShutdown(t *testing.T) {
	const shutdownTimeout = 20 * time.Second
	f := newOrdersFixture(t, 30*time.Second, func(c *config.Config) { c.ShutdownTimeout = shutdownTimeout })
	c := f.customer(10_000)
	f.item("apple", 150, 10)
	f.Drain()
	f.gw.SetDown(true)
	id := f.place(c, ordersLine{"apple", 1})
	resp, err := http.Get(f.URL + "/api/v1/orders/" + id + "/updates")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	ended := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
		}
		ended <- sc.Err()
	}()
	time.Sleep(300 * time.Millisecond)
	closing := time.Now()
	f.Close()
	if took := time.Since(closing); took >= shutdownTimeout {
		t.Errorf("the shutdown waited for its timeout (%s) for the open stream", took.Round(time.Millisecond))
	}
	select {
	case err := <-ended:
		if err != nil {
			t.Errorf("the stream broke instead of ending: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stream is still open after Close")
	}
}
