package console_test

import (
	"fmt"
	"html"
	"net/url"
	"regexp"
	"strconv"
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

var (
	dataPosition = regexp.MustCompile(`data-position="(\d+)"`)
	dataThrough  = regexp.MustCompile(`data-through="(\d+)"`)
)

// The Lake page shows the mover's backlog (the figure /metrics exports,
// from the same sample), how many events the lake holds, and the
// exporter: where its manifest is and how far it has exported, which
// reaches the lake's last position once a run follows the moves. With
// CAIRN_LAKE=off it says so.
func TestConsoleLakePage(t *testing.T) {
	dir := t.TempDir()
	a := testenv.StartApp(t, testenv.AppOptions{RelayDeleteDelay: time.Millisecond, Config: func(c *config.Config) {
		c.AdminToken, c.LakeExportInterval, c.LakeExportURL = token, time.Second, "file://"+dir
	}})
	b := newBrowser(t, a.URL)
	b.login()
	for _, who := range []string{"lake0", "lake1"} {
		signUp(t, a, who)
	}
	a.Drain()
	waitFor(t, "the outbox moved into the lake", func() bool {
		return a.Count(`SELECT count(*) FROM outbox.events`) == 0 && a.Count(`SELECT count(*) FROM lake.events`) >= 6
	})
	inLake := a.Count(`SELECT count(*) FROM lake.events`)
	var page string
	waitFor(t, "an export through the lake's last position", func() bool {
		page = b.page("/console/lake")
		th := dataThrough.FindStringSubmatch(page)
		return th != nil && th[1] == strconv.Itoa(inLake)
	})
	if pos := dataPosition.FindStringSubmatch(page); pos == nil || pos[1] != strconv.Itoa(inLake) {
		t.Errorf("the page shows position %v; the lake holds %d events", pos, inLake)
	}
	if !strings.Contains(page, "<code data-manifest>file://"+dir+"/manifest.json</code>") {
		t.Errorf("the manifest's location is not shown:\n%s", page)
	}

	// Its figures that name a series are /metrics's, from one sample. The
	// export's time moves every second, so a pair may straddle a run: retry.
	for attempt := 0; ; attempt++ {
		page = b.page("/console/lake")
		m, sampled := scrape(t, a.URL)
		var bad []string
		n := 0
		for _, match := range dataMetric.FindAllStringSubmatch(page, -1) {
			key, val := html.UnescapeString(match[1]+match[3]), match[2]+match[4]
			got, err := strconv.ParseFloat(val, 64)
			if want, ok := m[key]; !ok || err != nil || got != want {
				bad = append(bad, fmt.Sprintf("%s = %q, /metrics %v (exported: %v)", key, val, want, ok))
			}
			n++
		}
		if sampleOf(page) == sampled && len(bad) == 0 {
			if n != 2 {
				t.Fatalf("%d figures compared, want the unmoved events and the last export", n)
			}
			if m["cairn_lake_export_last_success_timestamp_seconds"] == 0 {
				t.Fatal("no export succeeded, yet the manifest reached the lake's head")
			}
			break
		}
		if attempt > 20 {
			t.Fatalf("the Lake page and /metrics never agreed: %v", bad)
		}
	}

	off := testenv.StartApp(t, testenv.AppOptions{Config: func(c *config.Config) { c.AdminToken, c.Lake = token, "off" }})
	ob := newBrowser(t, off.URL)
	ob.login()
	if page := ob.page("/console/lake"); !strings.Contains(page, `data-lake="off"`) || !strings.Contains(page, "CAIRN_LAKE=off") ||
		strings.Contains(page, "data-position") || strings.Contains(page, "cairn_lake_unmoved_events") {
		t.Fatalf("with the lake off:\n%s", page)
	}
}
