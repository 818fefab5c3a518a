package integration_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// outcome is what a load request learned about its transaction.
type outcome int

const (
	committed  outcome = iota // 2xx: the transaction committed
	refused                   // the expected 4xx: it rolled back
	unknown                   // no answer, or a 5xx: it may or may not have committed
	notSent                   // the connection was refused: nothing reached Cairn
	unexpected                // any other answer (reported by the checker)
)

func (o outcome) String() string {
	return [...]string{"committed", "refused", "unknown", "not sent", "unexpected"}[o]
}

// impossible is added to the amount of a withdrawal meant to be refused: no
// balance in these tests comes near it.
const impossible = 100_000_000_000_000

// moveRec is one deposit or withdrawal the load made. Amounts are unique
// across a test, so a ledger entry tells which request wrote it.
type moveRec struct {
	Kind       string // "deposited" or "withdrawn", as ledger.entries.type
	Account    string
	Amount     int64
	Via        int
	Start, End time.Time
	Outcome    outcome
	Status     int
	Version    int64
	EventID    string
	Err        string
}

// signupRec is one sign-up the load made; emails are unique.
type signupRec struct {
	Email      string
	Via        int
	Start, End time.Time
	Outcome    outcome
	Status     int
	UserID     string
	Err        string
}

// load is a steady stream of deposits, withdrawals (some refused) and
// sign-ups through every replica's HTTP API, recording what each request
// learned.
type load struct {
	t        *testing.T
	accounts []string
	prefix   string
	client   *http.Client
	amount   atomic.Int64
	users    atomic.Int64
	inFlight atomic.Int64 // sign-ups under way

	mu      sync.Mutex
	bases   []string // each replica's HTTP base URL
	moves   []moveRec
	signups []signupRec
	down    map[int]bool // replicas not loaded now (killed)
	paused  bool         // no sign-ups now

	stop chan struct{}
	wg   sync.WaitGroup
}

const (
	moveWorkersPerReplica = 2
	moveEvery             = 30 * time.Millisecond
	signupEvery           = 400 * time.Millisecond // bcrypt is costly on 2 cores
	requestTimeout        = 5 * time.Second
)

func newLoad(t *testing.T, prefix string, bases []string) *load {
	return &load{
		t: t, bases: bases, prefix: prefix, down: map[int]bool{},
		client: &http.Client{Timeout: requestTimeout},
		stop:   make(chan struct{}),
	}
}

// openAccounts opens n accounts through replica 0.
func (l *load) openAccounts(n int) {
	l.t.Helper()
	for i := range n {
		code, body := postJSON(l.t, l.base(0)+"/api/v1/accounts", map[string]string{"owner": fmt.Sprintf("%s-%d", l.prefix, i), "currency": "EUR"})
		if code != http.StatusCreated {
			l.t.Fatalf("open account: %d %v", code, body)
		}
		l.accounts = append(l.accounts, body["id"].(string))
	}
}

// start runs the workers until Stop.
func (l *load) start() {
	for via := range l.bases {
		for w := range moveWorkersPerReplica {
			l.wg.Add(1)
			go l.run(via, moveEvery, false, func(n int) { l.move(via, w, n) })
		}
		l.wg.Add(1)
		go l.run(via, signupEvery, true, func(int) { l.signup(via) })
	}
}

func (l *load) run(via int, every time.Duration, signup bool, op func(n int)) {
	defer l.wg.Done()
	for n := 0; ; n++ {
		select {
		case <-l.stop:
			return
		case <-time.After(every):
		}
		l.mu.Lock()
		skip := l.down[via] || (signup && l.paused)
		l.mu.Unlock()
		if !skip {
			op(n)
		}
	}
}

// stopReplica stops loading replica via (it was killed).
func (l *load) stopReplica(via int) {
	l.mu.Lock()
	l.down[via] = true
	l.mu.Unlock()
}

// resumeReplica loads replica via again, now at base.
func (l *load) resumeReplica(via int, base string) {
	l.mu.Lock()
	l.bases[via], l.down[via] = base, false
	l.mu.Unlock()
}

// pauseSignups stops (or resumes) the sign-ups; stopping waits for those
// under way.
func (l *load) pauseSignups(paused bool) {
	l.mu.Lock()
	l.paused = paused
	l.mu.Unlock()
	for paused && l.inFlight.Load() > 0 {
		time.Sleep(10 * time.Millisecond)
	}
}

func (l *load) base(via int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bases[via]
}

// Stop ends the load and waits for requests in flight.
func (l *load) Stop() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// move makes one request: mostly deposits, every 7th a withdrawal that may
// go through, every 10th one that must be refused.
func (l *load) move(via, worker, n int) {
	amount := l.amount.Add(1)
	rec := moveRec{Kind: "deposited", Account: l.accounts[(worker*7919+n)%len(l.accounts)], Amount: amount, Via: via}
	path := "/deposits"
	switch {
	case n%10 == 9:
		rec.Kind, rec.Amount, path = "withdrawn", impossible+amount, "/withdrawals"
	case n%7 == 6:
		rec.Kind, path = "withdrawn", "/withdrawals"
	}
	l.record(l.doMove(rec, path))
}

func (l *load) doMove(rec moveRec, path string) moveRec {
	rec.Start = time.Now()
	status, body, err := l.post(l.base(rec.Via)+"/api/v1/accounts/"+rec.Account+path, map[string]int64{"amount": rec.Amount})
	rec.End = time.Now()
	rec.Status = status
	switch {
	case err != nil:
		rec.Outcome, rec.Err = transportOutcome(err), err.Error()
	case status == http.StatusCreated:
		rec.Outcome = committed
		var mv struct {
			Version int64  `json:"version"`
			EventID string `json:"event_id"`
		}
		if err := json.Unmarshal(body, &mv); err != nil || mv.EventID == "" {
			rec.Outcome, rec.Err = unexpected, fmt.Sprintf("201 without event_id: %s", body)
		}
		rec.Version, rec.EventID = mv.Version, mv.EventID
	case status == http.StatusUnprocessableEntity && rec.Kind == "withdrawn":
		rec.Outcome = refused
	case status >= 500:
		rec.Outcome, rec.Err = unknown, string(body)
	default:
		rec.Outcome, rec.Err = unexpected, string(body)
	}
	return rec
}

func (l *load) signup(via int) {
	l.inFlight.Add(1)
	defer l.inFlight.Add(-1)
	n := l.users.Add(1)
	l.recordSignup(l.doSignup(via, fmt.Sprintf("%s-%d@example.com", l.prefix, n)))
}

func (l *load) doSignup(via int, email string) signupRec {
	rec := signupRec{Email: email, Via: via, Start: time.Now()}
	status, body, err := l.post(l.base(via)+"/api/v1/users", map[string]string{"username": "u", "email": email, "password": "correct horse battery staple"})
	rec.End, rec.Status = time.Now(), status
	switch {
	case err != nil:
		rec.Outcome, rec.Err = transportOutcome(err), err.Error()
	case status == http.StatusCreated:
		var u struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(body, &u)
		rec.Outcome, rec.UserID = committed, u.ID
	case status >= 500:
		rec.Outcome, rec.Err = unknown, string(body)
	default:
		rec.Outcome, rec.Err = unexpected, string(body)
	}
	return rec
}

// probe makes one deposit and one sign-up through replica via, at once.
func (l *load) probe(via int) (moveRec, signupRec) {
	mv := l.doMove(moveRec{Kind: "deposited", Account: l.accounts[0], Amount: l.amount.Add(1), Via: via}, "/deposits")
	l.record(mv)
	su := l.doSignup(via, fmt.Sprintf("%s-final-%d@example.com", l.prefix, via))
	l.recordSignup(su)
	return mv, su
}

func (l *load) post(url string, body any) (int, []byte, error) {
	b, _ := json.Marshal(body)
	resp, err := l.client.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, raw, err
	}
	return resp.StatusCode, raw, nil
}

// transportOutcome: a refused connection reached nothing; anything else
// (a timeout, a reset) may have committed.
func transportOutcome(err error) outcome {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return notSent
	}
	return unknown
}

func (l *load) record(r moveRec) {
	l.mu.Lock()
	l.moves = append(l.moves, r)
	l.mu.Unlock()
}

func (l *load) recordSignup(r signupRec) {
	l.mu.Lock()
	l.signups = append(l.signups, r)
	l.mu.Unlock()
}

// Records returns copies of everything recorded so far.
func (l *load) Records() ([]moveRec, []signupRec) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]moveRec(nil), l.moves...), append([]signupRec(nil), l.signups...)
}
