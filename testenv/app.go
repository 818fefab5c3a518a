package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"

	"github.com/cairn-dev/cairn/app"
	"github.com/cairn-dev/cairn/config"
	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/relay"
)

// AppOptions choose what StartApp boots; the zero value is every module on
// a fresh database and NATS.
type AppOptions struct {
	// Modules to build; nil means all that Cairn ships (app.Modules()).
	Modules []modules.Definition
	// Config adjusts the settings (config.Default(), HTTP on 127.0.0.1:0).
	Config func(*config.Config)
	// DB and NATS, if set, are used instead of fresh ones.
	DB   *DB
	NATS *NATS
	// RelayDeleteDelay is how long published rows stay in the outbox
	// before the relay deletes them (or the lake takes them); zero means an
	// hour, so that Appended can read every event of the test.
	RelayDeleteDelay time.Duration
}

// App is the whole application running in the test's process, as `cairn
// serve` runs it, on the test's own PostgreSQL database and NATS server.
type App struct {
	*app.App
	URL  string // base URL, http://127.0.0.1:<port>
	DB   *DB
	NATS *NATS
	tb   testing.TB
	logs *syncBuffer
}

// StartApp boots the application on :0 and stops it (App.Close) when the
// test ends. Published events stay in the outbox for the whole test, so
// Appended can read them. Every log line, debug included, is kept for Logs.
func StartApp(tb testing.TB, o AppOptions) *App {
	tb.Helper()
	a := &App{DB: o.DB, NATS: o.NATS, tb: tb, logs: &syncBuffer{}}
	if a.DB == nil {
		a.DB = MustDB(tb)
	}
	if a.NATS == nil {
		a.NATS = MustNATS(tb)
	}
	cfg := config.Default()
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.DatabaseURL, cfg.NATSURL = a.DB.URL, a.NATS.URL()
	cfg.DataDir = tb.TempDir() // the lake's export folder, among others
	if o.Config != nil {
		o.Config(&cfg)
	}
	log := slog.New(slog.NewTextHandler(a.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var err error
	if o.RelayDeleteDelay <= 0 {
		o.RelayDeleteDelay = time.Hour
	}
	a.App, err = app.New(ctx, cfg, log, app.Options{
		Version: "test", Modules: o.Modules, Pool: a.DB.Pool, NATS: a.NATS.Conn, RelayDeleteDelay: o.RelayDeleteDelay,
	})
	if err != nil {
		tb.Fatalf("testenv: build the app: %v", err)
	}
	if err := a.Start(); err != nil {
		a.Close()
		tb.Fatalf("testenv: start the app: %v", err)
	}
	tb.Cleanup(func() { a.Close() })
	a.URL = a.App.URL()
	return a
}

// API sends a request to /api/v1<path> (see Do).
func (a *App) API(method, path string, body any, header ...string) Response {
	a.tb.Helper()
	return Do(a.tb, method, a.URL+"/api/v1"+path, body, header...)
}

// Logs returns everything the app logged so far.
func (a *App) Logs() string { return a.logs.String() }

// Count returns the answer of a count(*) query.
func (a *App) Count(sql string, args ...any) int {
	a.tb.Helper()
	var n int
	if err := a.DB.Pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		a.tb.Fatalf("%s: %v", sql, err)
	}
	return n
}

// Message is one event as it was published: its NATS subject and bytes,
// and the CloudEvent they hold.
type Message struct {
	NATSSubject string
	// Header is the NATS message's (nil for a row read from the outbox).
	Header nats.Header
	Raw    string
	outbox.CloudEvent
}

// Messages is a list of events, with filters.
type Messages []Message

// OfKey keeps the events of one key (the CloudEvents subject).
func (ms Messages) OfKey(key string) Messages {
	return ms.where(func(m Message) bool { return m.Subject == key })
}

// OfType keeps the events of one type.
func (ms Messages) OfType(eventType string) Messages {
	return ms.where(func(m Message) bool { return m.Type == eventType })
}

func (ms Messages) where(keep func(Message) bool) Messages {
	var out Messages
	for _, m := range ms {
		if keep(m) {
			out = append(out, m)
		}
	}
	return out
}

// Appended runs fn and returns the events committed to the outbox while it
// ran, in the order the relay publishes them, without waiting for NATS:
// what a use case appended. Events that handlers commit meanwhile are
// included too; Drain first if that matters.
func (a *App) Appended(fn func()) Messages {
	a.tb.Helper()
	ctx := context.Background()
	var mark int64
	if err := a.DB.Pool.QueryRow(ctx, `SELECT coalesce(max(seq), 0) FROM outbox.events`).Scan(&mark); err != nil {
		a.tb.Fatalf("testenv: read the outbox: %v", err)
	}
	fn()
	rows, err := a.DB.Pool.Query(ctx, `SELECT subject, payload FROM outbox.events WHERE seq > $1 ORDER BY txid, seq`, mark)
	if err != nil {
		a.tb.Fatalf("testenv: read the outbox: %v", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Message, error) {
		var subject string
		var payload []byte
		if err := r.Scan(&subject, &payload); err != nil {
			return Message{}, err
		}
		return decodeMessage(subject, payload)
	})
	if err != nil {
		a.tb.Fatalf("testenv: read the outbox: %v", err)
	}
	return out
}

func decodeMessage(subject string, data []byte) (Message, error) {
	m := Message{NATSSubject: subject, Raw: string(data)}
	return m, json.Unmarshal(data, &m.CloudEvent)
}

// Drain waits until the relay has published every committed event and
// every consumer has handled (or parked) every event of its stream, and
// nothing changed meanwhile: what the streams and tables hold is final. It
// fails the test after 30 s, saying what is still pending.
func (a *App) Drain() {
	a.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var last string
	for {
		before, why := a.streamSeqs(ctx)
		if why == "" {
			why = a.pending(ctx)
		}
		if after, _ := a.streamSeqs(ctx); why == "" && after == before {
			return
		}
		last = why
		select {
		case <-ctx.Done():
			a.tb.Fatalf("testenv: the app did not drain within 30s: %s", last)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// streamSeqs returns the last sequence of both streams, or why it cannot.
func (a *App) streamSeqs(ctx context.Context) ([2]uint64, string) {
	var out [2]uint64
	for i, name := range []string{outbox.PublicStream, outbox.InternalStream} {
		s, err := a.NATS.JS.Stream(ctx, name)
		if err != nil {
			return out, "stream " + name + ": " + err.Error()
		}
		info, err := s.Info(ctx)
		if err != nil {
			return out, "stream " + name + ": " + err.Error()
		}
		out[i] = info.State.LastSeq
	}
	return out, ""
}

// pending says what is not yet done, or "" when nothing is.
func (a *App) pending(ctx context.Context) string {
	m, err := a.Relay().Metrics(ctx)
	switch {
	case err != nil:
		return "relay: " + err.Error()
	case m.State != relay.Leader:
		return "the relay is " + string(m.State)
	case m.Backlog > 0:
		return "the outbox holds unpublished events"
	}
	for _, s := range a.Subscriptions() {
		stream := outbox.PublicStream
		if s.Visibility == outbox.Internal {
			stream = outbox.InternalStream
		}
		c, err := a.NATS.JS.Consumer(ctx, stream, s.Consumer)
		if err != nil {
			return "consumer " + s.Consumer + ": " + err.Error()
		}
		info, err := c.Info(ctx)
		if err != nil {
			return "consumer " + s.Consumer + ": " + err.Error()
		}
		if info.NumPending > 0 || info.NumAckPending > 0 {
			return "consumer " + s.Consumer + " has events to handle"
		}
	}
	return ""
}

// Stream returns every message of a stream in stream order, once the app
// has drained: what a subscriber reading the stream from the start sees.
func (a *App) Stream(name string) Messages {
	a.tb.Helper()
	a.Drain()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := a.NATS.JS.Stream(ctx, name)
	if err != nil {
		a.tb.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		a.tb.Fatal(err)
	}
	var out Messages
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		raw, err := s.GetMsg(ctx, seq)
		if err != nil {
			a.tb.Fatal(err)
		}
		m, err := decodeMessage(raw.Subject, raw.Data)
		if err != nil {
			a.tb.Fatalf("stream %s seq %d is not a CloudEvent: %v", name, seq, err)
		}
		m.Header = raw.Header
		out = append(out, m)
	}
	return out
}

// syncBuffer is a log destination safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
