package console_test

import (
	"bufio"
	"context"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/cairn-dev/cairn/config"
	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/testenv"
)

const token = "console-test-token"

// browser is an HTTP client with a cookie jar that does not follow
// redirects, so a test sees them.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newBrowser(t *testing.T, base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: base, c: &http.Client{Jar: jar, Timeout: 60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) do(method, path string, form url.Values) (int, string, http.Header) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw), resp.Header
}

func (b *browser) page(path string) string {
	b.t.Helper()
	status, body, _ := b.do("GET", path, nil)
	if status != 200 {
		b.t.Fatalf("GET %s: %d\n%s", path, status, body)
	}
	return body
}

var csrfField = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

func (b *browser) csrf(page string) string {
	b.t.Helper()
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		b.t.Fatalf("no CSRF token in the page")
	}
	return m[1]
}

func (b *browser) login() {
	b.t.Helper()
	status, _, h := b.do("POST", "/console/login", url.Values{"token": {token}, "next": {"/console/consumers"}})
	if status != http.StatusSeeOther || h.Get("Location") != "/console/consumers" {
		b.t.Fatalf("login: %d to %q", status, h.Get("Location"))
	}
}

// The console is behind the admin token: pages send to the login page, a
// wrong token is refused, a form without the session's CSRF token is
// refused, and after logging in every page renders.
func TestConsoleNeedsTheAdminToken(t *testing.T) {
	a := testenv.StartApp(t, testenv.AppOptions{Config: func(c *config.Config) { c.AdminToken = token }})
	b := newBrowser(t, a.URL)
	if status, _, h := b.do("GET", "/console/dead-letters?consumer=x", nil); status != http.StatusSeeOther ||
		h.Get("Location") != "/console/login?next=%2Fconsole%2Fdead-letters%3Fconsumer%3Dx" {
		t.Fatalf("without a session: %d to %q", status, h.Get("Location"))
	}
	if status, _, _ := b.do("GET", "/console/events/tail?subject=events.>", nil); status != http.StatusUnauthorized {
		t.Fatalf("the tail without a session: %d", status)
	}
	if status, body, _ := b.do("POST", "/console/login", url.Values{"token": {"wrong"}}); status != http.StatusUnauthorized || !strings.Contains(body, "not the admin token") {
		t.Fatalf("a wrong token: %d", status)
	}
	b.login()
	for _, p := range []string{"/console/", "/console/consumers", "/console/dead-letters", "/console/events", "/console/events?by=key&value=nothing", "/console/sagas"} {
		b.page(p)
	}
	if status, _, _ := b.do("POST", "/console/consumers/mail_activation_email/pause", url.Values{"reason": {"no csrf"}}); status != http.StatusForbidden {
		t.Fatalf("a form without its CSRF token: %d", status)
	}
	if status, _, h := b.do("POST", "/console/logout", url.Values{"csrf": {b.csrf(b.page("/console/"))}}); status != http.StatusSeeOther {
		t.Fatalf("logout: %d %v", status, h)
	}
	if status, _, _ := b.do("GET", "/console/", nil); status != http.StatusSeeOther {
		t.Fatalf("after logout: %d", status)
	}

	off := testenv.StartApp(t, testenv.AppOptions{})
	if status, body, _ := newBrowser(t, off.URL).do("GET", "/console/login", nil); status != 200 || !strings.Contains(body, "The console is off") {
		t.Fatalf("with no admin token: %d", status)
	}
}

var dataMetric = regexp.MustCompile(`data-metric='([^']+)' data-value="([^"]*)"|data-metric="([^"]+)" data-value="([^"]*)"`)
var dataSample = regexp.MustCompile(`data-sample="([^"]+)"`)

// The figures the console shows are /metrics's at the same moment: with
// dead letters, a paused consumer and events waiting, every number of the
// Overview and Consumers pages that names a series equals that series in
// a scrape of the same sample.
func TestConsoleFiguresEqualMetrics(t *testing.T) {
	smtp := testenv.StartFakeSMTP(t)
	smtp.Refuse("ada0@example.com")
	a := testenv.StartApp(t, testenv.AppOptions{Config: func(c *config.Config) { c.AdminToken, c.SMTPURL = token, smtp.URL() }})
	b := newBrowser(t, a.URL)
	b.login()
	for i := range 3 {
		signUp(t, a, fmt.Sprintf("ada%d", i))
	}
	waitFor(t, "the refused email parked", func() bool { return a.Count(`SELECT count(*) FROM inbox.dead_letters`) == 1 })
	page := b.page("/console/consumers")
	if status, _, _ := b.do("POST", "/console/consumers/mail_activation_email/pause", url.Values{"csrf": {b.csrf(page)}, "reason": {"smtp maintenance"}}); status != http.StatusSeeOther {
		t.Fatalf("pause: %d", status)
	}
	signUp(t, a, "late")
	waitFor(t, "the late event pending", func() bool {
		m, _ := scrape(t, a.URL)
		// Pending, or fetched by a pull request open when the pause came
		// and held before its handler.
		return m[`cairn_consumer_pending_events{consumer="mail_activation_email"}`]+m[`cairn_consumer_ack_pending_events{consumer="mail_activation_email"}`] == 1 &&
			m[`cairn_consumer_dead_letters{consumer="mail_activation_email"}`] == 1
	})

	for attempt := 0; ; attempt++ {
		consumers, overview := b.page("/console/consumers"), b.page("/console/")
		m, sampled := scrape(t, a.URL)
		if sampleOf(consumers) != sampled || sampleOf(overview) != sampled {
			if attempt > 20 {
				t.Fatalf("never caught one sample on all three: %s %s %s", sampleOf(consumers), sampleOf(overview), sampled)
			}
			continue
		}
		n := 0
		for _, page := range []string{consumers, overview} {
			for _, match := range dataMetric.FindAllStringSubmatch(page, -1) {
				key, val := html.UnescapeString(match[1]+match[3]), match[2]+match[4]
				want, ok := m[key]
				got, err := strconv.ParseFloat(val, 64)
				if !ok || err != nil || got != want {
					t.Errorf("the console shows %s = %q, /metrics %v (exported: %v)", key, val, want, ok)
				}
				n++
			}
		}
		for _, key := range []string{`cairn_consumer_dead_letters{consumer="mail_activation_email"}`,
			`cairn_consumer_paused{consumer="mail_activation_email",reason="operator"}`} {
			if m[key] != 1 {
				t.Errorf("%s = %v, want 1: the scenario did not set the stage", key, m[key])
			}
		}
		t.Logf("%d figures compared", n)
		if n < 15 {
			t.Errorf("only %d figures compared", n)
		}
		return
	}
}

func sampleOf(html string) string {
	m := dataSample.FindStringSubmatch(html)
	if m == nil {
		return ""
	}
	return m[1]
}

// scrape returns every series of /metrics by `name{label="v",…}` (labels
// sorted, as the console writes them) and the sample's timestamp.
func scrape(t *testing.T, base string) (map[string]float64, string) {
	t.Helper()
	r := testenv.Do(t, "GET", base+"/metrics", nil)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(r.Raw))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+strconv.Quote(l.GetValue()))
			}
			key := name
			if len(ls) > 0 {
				key += "{" + strings.Join(ls, ",") + "}"
			}
			switch {
			case m.GetGauge() != nil:
				out[key] = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				out[key] = m.GetCounter().GetValue()
			}
		}
	}
	return out, strconv.FormatFloat(out["cairn_metrics_sample_timestamp_seconds"], 'f', 3, 64)
}

func signUp(t *testing.T, a *testenv.App, who string) {
	t.Helper()
	r := a.API("POST", "/users", map[string]string{"username": who, "email": who + "@example.com", "password": "correct horse battery"})
	if r.Status != 201 {
		t.Fatalf("sign-up: %d %s", r.Status, r.Raw)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// Dead letters are retried in bulk from the console: the confirmation
// counts them, the action reports each result. The live tail streams
// events as they are published, and an event's lineage shows what it
// caused.
func TestConsoleBulkRetryTailAndLineage(t *testing.T) {
	smtp := testenv.StartFakeSMTP(t)
	smtp.Down.Store(false)
	a := testenv.StartApp(t, testenv.AppOptions{Config: func(c *config.Config) { c.AdminToken, c.SMTPURL = token, smtp.URL() }})
	b := newBrowser(t, a.URL)
	b.login()

	// The tail, opened before the sign-ups.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", a.URL+"/console/events/tail?subject=events.users.>", nil)
	resp, err := b.c.Do(req)
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("tail: %v %v", err, resp)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	lines.Scan() // the opening comment: the subscription is in place

	smtp.Refuse("*")
	for i := range 3 {
		signUp(t, a, fmt.Sprintf("bulk%d", i))
	}
	got := 0
	for got < 3 && lines.Scan() {
		if strings.HasPrefix(lines.Text(), "data: ") && strings.Contains(lines.Text(), `"type":"users.account_created.v1"`) {
			got++
		}
		if strings.Contains(lines.Text(), "internal.") {
			t.Fatalf("the tail of events.users.> carried %s", lines.Text())
		}
	}
	if got != 3 {
		t.Fatalf("the tail delivered %d of 3 sign-ups", got)
	}

	waitFor(t, "three dead letters", func() bool { return a.Count(`SELECT count(*) FROM inbox.dead_letters`) == 3 })
	list := b.page("/console/dead-letters?error=no+such+mailbox")
	if !strings.Contains(list, `data-total="3"`) {
		t.Fatalf("the list does not count 3")
	}
	_, confirm, _ := b.do("POST", "/console/dead-letters/confirm", url.Values{"csrf": {b.csrf(list)}, "action": {"retry"}, "error": {"no such mailbox"}})
	if !strings.Contains(confirm, `<span id="confirm-count">3</span>`) {
		t.Fatalf("the confirmation does not count 3:\n%s", confirm)
	}
	ids := regexp.MustCompile(`name="ids" value="([^"]*)"`).FindStringSubmatch(confirm)[1]
	smtp.Refuse("")
	signUp(t, a, "after") // nothing to do with the confirmed set
	status, results, _ := b.do("POST", "/console/dead-letters/bulk", url.Values{"csrf": {b.csrf(confirm)}, "action": {"retry"}, "ids": {ids}})
	if status != 200 || !strings.Contains(results, `<strong data-outcome="delivered">3</strong> delivered`) {
		t.Fatalf("bulk retry: %d\n%s", status, results)
	}
	if n := a.Count(`SELECT count(*) FROM inbox.dead_letters`); n != 0 {
		t.Fatalf("%d dead letters left", n)
	}

	a.Drain()
	sent := a.Stream(outbox.PublicStream).OfType("mail.activation_email_sent.v1")
	if len(sent) == 0 {
		t.Fatal("no email sent")
	}
	lineage := b.page("/console/lineage/" + sent[0].ID)
	if !strings.Contains(lineage, "users.activation_requested.v1") || !strings.Contains(lineage, `class="current" aria-current="true"`) {
		t.Fatalf("the lineage does not show the request that caused the email:\n%s", lineage)
	}
	found := b.page("/console/events?by=correlation&value=" + url.QueryEscape(sent[0].CorrelationID))
	if !strings.Contains(found, "users.account_created.v1") || !strings.Contains(found, "mail.activation_email_sent.v1") {
		t.Fatalf("the correlation lookup misses events:\n%s", found)
	}
}
