package web

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
)

// The console explains its figures: each relay counter carries what it
// means, and the page says since when they count.
func TestConsoleExplainsItsFigures(t *testing.T) {
	e := NewServer(slog.New(slog.DiscardHandler))
	RegisterConsole(e, func(context.Context) Status {
		return Status{Modules: []string{}, UptimeSeconds: 125, Help: StatusHelp, Relay: RelayStatus{State: "leader", Idles: 7}}
	})
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	page := rec.Body.String()
	for _, want := range []string{`title="how often the relay found nothing to publish`, "since it started, <span id=\"uptime\">2m 05s</span> ago"} {
		if !strings.Contains(page, want) {
			t.Errorf("the console lacks %q", want)
		}
	}
	for _, key := range []string{"relay.idles", "relay.published", "relay.backlog", "uptime_seconds"} {
		if StatusHelp[key] == "" {
			t.Errorf("no help for %s", key)
		}
	}
}
