package console_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/config"
	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/testenv"
)

// With the lake on, the Events and Lineage pages look events up in the
// lake: once published events have left the outbox, a sign-up's events
// are still found by correlation id and its lineage is drawn, each event
// shown as found in the lake.
func TestConsoleFindsEventsInTheLake(t *testing.T) {
	a := testenv.StartApp(t, testenv.AppOptions{Config: func(c *config.Config) { c.AdminToken = token },
		RelayDeleteDelay: time.Millisecond}) // published rows move into the lake at once
	b := newBrowser(t, a.URL)
	b.login()
	signUp(t, a, "lakey")
	a.Drain()
	waitFor(t, "the outbox moved into the lake", func() bool {
		return a.Count(`SELECT count(*) FROM outbox.events`) == 0 && a.Count(`SELECT count(*) FROM lake.events`) >= 3
	})
	sent := a.Stream(outbox.PublicStream).OfType("mail.activation_email_sent.v1")
	if len(sent) != 1 {
		t.Fatalf("%d emails sent", len(sent))
	}
	found := b.page("/console/events?by=correlation&value=" + url.QueryEscape(sent[0].CorrelationID))
	for _, want := range []string{"users.account_created.v1", "users.activation_requested.v1", "mail.activation_email_sent.v1", "lake (EVENTS)", "lake (INTERNAL)", "The lookup reaches the lake"} {
		if !strings.Contains(found, want) {
			t.Errorf("the correlation lookup lacks %q:\n%s", want, found)
		}
	}
	lineage := b.page("/console/lineage/" + sent[0].ID)
	if !strings.Contains(lineage, "users.activation_requested.v1") || !strings.Contains(lineage, `class="current" aria-current="true"`) ||
		!strings.Contains(lineage, "lake (EVENTS)") {
		t.Fatalf("the lineage from the lake:\n%s", lineage)
	}
	if status, _, _ := b.do("GET", "/console/lineage/0193a3b0-0000-7000-8000-000000000000", nil); status != 404 {
		t.Fatalf("an unknown event's lineage: %d", status)
	}
}
