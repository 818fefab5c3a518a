package integration_test

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/modules/users"
	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/testenv"
)

// apiUnderMail is what the API answered while a slow SMTP server held
// Cairn's mail consumer busy.
type apiUnderMail struct {
	latencies []time.Duration // of the GETs that answered 200 while emails were in flight, sorted
	failures  []string        // every GET that did not
	emails    int64           // accepted by the SMTP server during the window
	mostOpen  int64           // SMTP sessions open at once, at most
	window    time.Duration
}

// apiClientTimeout is what a client waits for GET /users/:id: shorter than
// one SMTP answer, so an API request stuck behind a handler that holds a
// connection for the SMTP call is caught.
const apiClientTimeout = 3 * time.Second

// runAPIUnderMail starts the real binary with CAIRN_SMTP_URL pointing at an
// SMTP server that answers each message after delay, commits emails
// activation requests at once, and reads users back through
// GET /api/v1/users/:id from 4 clients while the emails go out (for at
// most window). Latencies count only while the SMTP server has a session
// open; every failure counts.
func runAPIUnderMail(tb testing.TB, emails int, delay, window time.Duration) apiUnderMail {
	tb.Helper()
	db := testenv.MustDB(tb)
	nt := testenv.MustNATS(tb)
	smtpd := startSlowSMTP(tb, delay)
	env := externalEnv(db, nt)
	env["CAIRN_SMTP_URL"] = smtpd.URL()
	p := startCairn(tb, env)
	api := p.HTTP + "/api/v1"

	var ids []string
	for i := range 5 {
		r := testenv.Do(tb, "POST", api+"/users", map[string]string{
			"username": fmt.Sprintf("reader%d", i), "email": fmt.Sprintf("reader%d@example.com", i), "password": "correct horse battery",
		})
		id, _ := r.Body["id"].(string)
		if r.Status != 201 || id == "" {
			tb.Fatalf("sign-up: %d %s", r.Status, r.Raw)
		}
		ids = append(ids, id)
	}
	ctx := context.Background()
	for i := range emails {
		err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
			id := fmt.Sprintf("burst-%d", i)
			_, err := outbox.Append(ctx, tx, users.EventActivationRequested.New(id,
				users.ActivationRequested{UserID: id, Username: "u", Email: fmt.Sprintf("burst%d@example.com", i),
					Token: fmt.Sprintf("token-%d-abcdefghijklmnopqrstuvwxyz", i), ExpiresAt: time.Now().Add(time.Hour)}))
			return err
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	waitUntil(tb, 60*time.Second, "the SMTP server to be busy", func() bool { return smtpd.open.Load() >= 20 })

	var res apiUnderMail
	var mu sync.Mutex
	client := &http.Client{Timeout: apiClientTimeout}
	sentBefore := smtpd.got.Load()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; time.Since(start) < window; i++ {
				busy := smtpd.open.Load() > 0
				if !busy && smtpd.got.Load() >= int64(emails) {
					return // every email is out: the load is over
				}
				url := api + "/users/" + ids[i%len(ids)]
				t0 := time.Now()
				resp, err := client.Get(url)
				took := time.Since(t0)
				mu.Lock()
				switch {
				case err != nil:
					res.failures = append(res.failures, fmt.Sprintf("after %s: %v", took.Round(time.Millisecond), err))
				case resp.StatusCode != 200:
					res.failures = append(res.failures, fmt.Sprintf("after %s: status %d", took.Round(time.Millisecond), resp.StatusCode))
				case busy:
					res.latencies = append(res.latencies, took)
				}
				mu.Unlock()
				if resp != nil {
					resp.Body.Close()
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	res.window = time.Since(start)
	res.emails = smtpd.got.Load() - sentBefore
	res.mostOpen = smtpd.mostOpen.Load()
	sort.Slice(res.latencies, func(i, j int) bool { return res.latencies[i] < res.latencies[j] })
	if err := p.Stop(30 * time.Second); err != nil {
		tb.Logf("cairn did not stop cleanly: %v", err)
	}
	return res
}

// Slow outside calls do not starve the HTTP API (issue 8, defect 9): while
// 300 activation emails go to an SMTP server that takes 5 s to answer each,
// every GET /api/v1/users/:id answers. The mail handler used to hold a pool
// connection and an open transaction for each SMTP call, and up to 256
// lanes shared the API's 32 connections.
func TestAPIAnswersWhileMailIsSlow(t *testing.T) {
	res := runAPIUnderMail(t, 300, 5*time.Second, 30*time.Second)
	t.Logf("%d GETs answered (p99 %s, max %s), %d failed; %d emails sent in %s, %d SMTP sessions at once at most",
		len(res.latencies), benchPercentile(res.latencies, 99), benchPercentile(res.latencies, 100), len(res.failures),
		res.emails, res.window.Round(time.Millisecond), res.mostOpen)
	if len(res.failures) > 0 {
		t.Fatalf("%d of %d GETs failed while mail was slow, first: %s", len(res.failures), len(res.failures)+len(res.latencies), res.failures[0])
	}
	if len(res.latencies) == 0 || res.emails == 0 {
		t.Fatal("no GET answered or no email went out meanwhile; the test proves nothing")
	}
}
