package integration_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The log lines the fault suite reads to learn who leads. Cairn's status
// API reports the relay's state; it does not (yet) report which replica
// runs a consumer, so for that the suite reads the log.
const (
	logRelayLeader = "relay is leader"
	logConsuming   = "consuming" // with consumer=<name>
)

// logTimes returns when any of procs logged msg (exactly), optionally only
// lines whose "consumer" attribute is consumer, in order.
func logTimes(procs []*cairnProc, msg, consumer string) []time.Time {
	var out []time.Time
	for _, p := range procs {
		out = append(out, logTimesOf(p, msg, consumer)...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out
}

func logTimesOf(p *cairnProc, msg, consumer string) []time.Time {
	var out []time.Time
	sc := bufio.NewScanner(strings.NewReader(p.logs.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line struct {
			Time     time.Time `json:"time"`
			Msg      string    `json:"msg"`
			Consumer string    `json:"consumer"`
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil || line.Msg != msg {
			continue
		}
		if consumer != "" && line.Consumer != consumer {
			continue
		}
		out = append(out, line.Time)
	}
	return out
}

// firstAfter returns the first time in ts after t, or the zero time.
func firstAfter(ts []time.Time, t time.Time) time.Time {
	for _, x := range ts {
		if x.After(t) {
			return x
		}
	}
	return time.Time{}
}

// leaderWatch polls every replica's GET /api/v1/status and records the
// relay state each reports ("unreachable" when it does not answer in time).
type leaderWatch struct {
	mu      sync.Mutex
	samples []stateSample
	stop    chan struct{}
	done    chan struct{}
}

type stateSample struct {
	At      time.Time
	Replica int
	State   string
}

func watchLeaders(replicas int, base func(int) string) *leaderWatch {
	w := &leaderWatch{stop: make(chan struct{}), done: make(chan struct{})}
	client := &http.Client{Timeout: time.Second}
	go func() {
		defer close(w.done)
		var wg sync.WaitGroup
		for i := range replicas {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-w.stop:
						return
					case <-time.After(100 * time.Millisecond):
					}
					st := relayState(client, base(i))
					w.mu.Lock()
					w.samples = append(w.samples, stateSample{At: time.Now(), Replica: i, State: st})
					w.mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}()
	return w
}

func relayState(client *http.Client, base string) string {
	resp, err := client.Get(base + "/api/v1/status")
	if err != nil {
		return "unreachable"
	}
	defer resp.Body.Close()
	var s struct {
		Relay struct {
			State string `json:"state"`
		} `json:"relay"`
	}
	if json.NewDecoder(resp.Body).Decode(&s) != nil {
		return "unreadable"
	}
	return s.Relay.State
}

// Stop ends the polling; safe to call twice.
func (w *leaderWatch) Stop() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// firstState returns when replica first reported state after t.
func (w *leaderWatch) firstState(replica int, state string, after time.Time) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.samples {
		if s.Replica == replica && s.State == state && s.At.After(after) {
			return s.At
		}
	}
	return time.Time{}
}

// overlaps counts the moments both replicas reported being leader within
// 200 ms of each other after t.
func (w *leaderWatch) overlaps(after time.Time) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	last := map[int]time.Time{}
	n := 0
	for _, s := range w.samples {
		if !s.At.After(after) || s.State != "leader" {
			continue
		}
		last[s.Replica] = s.At
		if o, ok := last[1-s.Replica]; ok && s.At.Sub(o) < 200*time.Millisecond {
			n++
		}
	}
	return n
}

// arrivals records when each event (by Nats-Msg-Id) first passed through
// the cluster, seen by a plain subscription of the test's own.
type arrivals struct {
	mu sync.Mutex
	at map[string]time.Time
}

func watchArrivals(nc *nats.Conn) (*arrivals, error) {
	a := &arrivals{at: map[string]time.Time{}}
	for _, subj := range []string{"events.>", "internal.>"} {
		if _, err := nc.Subscribe(subj, func(m *nats.Msg) {
			id := m.Header.Get(jetstream.MsgIDHeader)
			a.mu.Lock()
			if _, ok := a.at[id]; !ok {
				a.at[id] = time.Now()
			}
			a.mu.Unlock()
		}); err != nil {
			return nil, err
		}
	}
	return a, nc.Flush()
}

// At returns when id first arrived, or the zero time.
func (a *arrivals) At(id string) time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.at[id]
}
