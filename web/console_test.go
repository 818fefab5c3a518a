package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
)

const consoleTestEvil = `<script>alert("x")</script>`

func consoleTestStatus() Status {
	return Status{
		Version: "v1.2.3-test",
		Modules: []string{"orders", "billing", consoleTestEvil},
		Ready:   false,
		Checks: []Check{
			{Name: "postgres", OK: true},
			{Name: "nats", OK: false, Error: "dial tcp 127.0.0.1:4222: connection refused"},
		},
		Relay: RelayStatus{
			State:            "leader",
			Backlog:          4217,
			OldestAgeSeconds: 187.5,
			Published:        982451,
			PublishErrors:    17,
			LastError:        "nats: timeout & <retry>",
		},
		Consumers: []ConsumerStatus{
			{Consumer: "mail_activation_email", EventType: "users.activation_requested.v1", State: "failing",
				Reason: "smtp <down> & out", UnconsumedSeconds: 75, Lease: ConsumerLease{Holder: "host-b/42", Token: 7, Live: true}},
			{Consumer: "ledger_audit", EventType: "ledger.deposited.v1", State: "standing_by", InFlight: 3,
				Lease: ConsumerLease{Holder: "host-a/41", Token: 12, Live: true, Mine: true, Note: "consuming"}},
		},
		Time: time.Date(2025, 3, 14, 15, 9, 26, 535000000, time.UTC),
	}
}

func consoleTestServer(t *testing.T, s Status) *echo.Echo {
	t.Helper()
	e := echo.New()
	RegisterConsole(e, func(ctx context.Context) Status {
		if ctx == nil {
			t.Error("StatusFunc called with a nil context")
		}
		return s
	})
	return e
}

func consoleTestGet(t *testing.T, e *echo.Echo, path string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s: status %d, body:\n%s", path, rec.Code, rec.Body)
	}
	return rec
}

func TestConsolePage(t *testing.T) {
	s := consoleTestStatus()
	rec := consoleTestGet(t, consoleTestServer(t, s), "/")

	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("Content-Type = %q, want text/html", ct)
	}
	body := rec.Body.String()
	for _, want := range []string{
		"<title>Cairn</title>",
		s.Version,
		"<li>orders</li>",
		"<li>billing</li>",
		">4217<",   // relay backlog
		">982451<", // published
		">17<",     // publish errors
		"3m 07s",   // oldest unpublished age
		">leader<",
		`class="badge bad">Not ready<`,
		">nats<",
		"dial tcp 127.0.0.1:4222: connection refused",
		// Data is escaped, not interpreted.
		"<li>&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;</li>",
		"nats: timeout &amp; &lt;retry&gt;",
		// Consumers: state, lease and why.
		"mail_activation_email",
		`class="badge cstate-failing">failing<`,
		"smtp &lt;down&gt; &amp; out",
		"host-b/42 <span class=\"none\">token 7</span>",
		`class="badge cstate-standing_by">standing by<`,
		"token 12, this replica",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page does not contain %q", want)
		}
	}
	if strings.Contains(body, consoleTestEvil) {
		t.Errorf("page contains the unescaped module name %q", consoleTestEvil)
	}
}

func TestConsolePageReady(t *testing.T) {
	s := consoleTestStatus()
	s.Ready = true
	s.Checks = nil
	s.Modules = nil
	s.Relay = RelayStatus{State: "standby"}
	s.Consumers = nil
	body := consoleTestGet(t, consoleTestServer(t, s), "/").Body.String()
	for _, want := range []string{`class="badge good">Ready<`, "No readiness checks.", "No modules.", ">standby<", "state-standby", "No consumers."} {
		if !strings.Contains(body, want) {
			t.Errorf("page does not contain %q", want)
		}
	}
	if strings.Contains(body, `>Not ready<`) {
		t.Error("ready page says Not ready")
	}
}

// The inline style and script must carry the nonce the CSP header allows, or
// the browser shows an unstyled page that never refreshes.
func TestConsolePageCSPNonce(t *testing.T) {
	e := consoleTestServer(t, consoleTestStatus())
	var prev string
	for i := 0; i < 2; i++ {
		rec := consoleTestGet(t, e, "/")
		csp := rec.Header().Get("Content-Security-Policy")
		m := regexp.MustCompile(`script-src 'nonce-([^']+)'`).FindStringSubmatch(csp)
		if m == nil {
			t.Fatalf("Content-Security-Policy %q has no script nonce", csp)
		}
		nonce := m[1]
		if nonce == prev {
			t.Errorf("nonce %q reused across responses", nonce)
		}
		prev = nonce
		body := rec.Body.String()
		for _, tag := range []string{`<script nonce="` + nonce + `">`, `<style nonce="` + nonce + `">`} {
			if !strings.Contains(body, tag) {
				t.Errorf("page does not contain %q", tag)
			}
		}
		if !strings.Contains(csp, "connect-src 'self'") {
			t.Errorf("Content-Security-Policy %q does not allow fetching the status", csp)
		}
	}
}

// Everything is inline: no external assets, and data reaches the DOM only
// through textContent.
func TestConsoleTemplateSelfContained(t *testing.T) {
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "://", " src=", "<link"} {
		if strings.Contains(consoleHTML, bad) {
			t.Errorf("console.html contains %q", bad)
		}
	}
	if !strings.Contains(consoleHTML, `"api/v1/status"`) {
		t.Error("console.html script does not fetch api/v1/status")
	}
}

func TestConsoleStatusAPI(t *testing.T) {
	want := consoleTestStatus()
	rec := consoleTestGet(t, consoleTestServer(t, want), "/api/v1/status")

	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
	var got Status
	dec := json.NewDecoder(rec.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded status differs:\n got %+v\nwant %+v", got, want)
	}
}

func TestConsoleAge(t *testing.T) {
	for _, tc := range []struct {
		sec  float64
		want string
	}{
		{-1, "0.0s"},
		{0, "0.0s"},
		{4.21, "4.2s"},
		{59.9, "59.9s"},
		{60, "1m 00s"},
		{187.5, "3m 07s"},
		{3600, "1h 00m"},
		{7530, "2h 05m"},
		{86400, "1d 00h"},
		{3*86400 + 4*3600 + 59, "3d 04h"},
	} {
		if got := consoleAge(tc.sec); got != tc.want {
			t.Errorf("consoleAge(%v) = %q, want %q", tc.sec, got, tc.want)
		}
	}
}
