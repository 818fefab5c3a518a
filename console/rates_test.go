package console_test

import (
	"html"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/config"
	"github.com/cairn-dev/cairn/testenv"
)

var (
	dataRate     = regexp.MustCompile(`data-rate="(handled|failed)" data-consumer="([^"]+)" data-per-second="([^"]+)"`)
	dataInterval = regexp.MustCompile(`data-interval="([^"]+)"`)
	counterKey   = regexp.MustCompile(`^cairn_consumer_(handled_events|failed_attempts)_total\{consumer="([^"]+)"\}$`)
)

// The Consumers page shows handled/s and failed/s per consumer: the
// counters' difference since an earlier load, over the interval it names.
// The first load has nothing to take rates against and says so; after
// sign-ups (one refused by SMTP, so attempts fail) the second shows, for
// every consumer, rates that times the interval give exactly the counts
// that moved between the two pages.
func TestConsoleConsumerRates(t *testing.T) {
	smtp := testenv.StartFakeSMTP(t)
	smtp.Refuse("rate0@example.com")
	a := testenv.StartApp(t, testenv.AppOptions{Config: func(c *config.Config) { c.AdminToken, c.SMTPURL = token, smtp.URL() }})
	b := newBrowser(t, a.URL)
	b.login()

	first := b.page("/console/consumers")
	if dataRate.MatchString(first) || !strings.Contains(first, "Rates appear when the page is loaded again") {
		t.Fatalf("the first load shows rates it has nothing to take against:\n%s", first)
	}
	before := counters(first)
	for _, who := range []string{"rate0", "rate1", "rate2"} {
		signUp(t, a, who)
	}
	waitFor(t, "the refused email parked", func() bool { return a.Count(`SELECT count(*) FROM inbox.dead_letters`) == 1 })
	a.Drain()
	time.Sleep(time.Second) // rates need a second between loads

	second := b.page("/console/consumers")
	after := counters(second)
	m := dataInterval.FindStringSubmatch(second)
	if m == nil {
		t.Fatalf("the second load names no interval:\n%s", second)
	}
	over, _ := strconv.ParseFloat(m[1], 64)
	if over < 1 {
		t.Fatalf("rates over %v s", over)
	}
	shown := map[string]float64{}
	for _, r := range dataRate.FindAllStringSubmatch(second, -1) {
		v, err := strconv.ParseFloat(r[3], 64)
		if err != nil {
			t.Fatalf("rate %q: %v", r[3], err)
		}
		shown[r[1]+" "+html.UnescapeString(r[2])] = v
	}
	if len(shown) != len(after) || len(after) == 0 {
		t.Fatalf("%d rates shown for %d counters", len(shown), len(after))
	}
	var handled, failed float64
	for key, n := range after {
		rate, ok := shown[key]
		if !ok {
			t.Errorf("no rate for %s", key)
			continue
		}
		moved := n - before[key]
		if math.Abs(rate*over-moved) > 1e-6*max(1, moved) {
			t.Errorf("%s: %v/s over %vs is not the %v that moved (%v to %v)", key, rate, over, moved, before[key], n)
		}
		if strings.HasPrefix(key, "handled ") {
			handled += moved
		} else {
			failed += moved
		}
	}
	if handled == 0 || failed == 0 {
		t.Errorf("the scenario moved %v handled and %v failed: nothing to rate", handled, failed)
	}
}

// counters reads the handled and failed counters the Consumers page shows,
// by "handled <consumer>" and "failed <consumer>".
func counters(page string) map[string]float64 {
	out := map[string]float64{}
	for _, match := range dataMetric.FindAllStringSubmatch(page, -1) {
		key := counterKey.FindStringSubmatch(html.UnescapeString(match[1] + match[3]))
		if key == nil {
			continue
		}
		v, _ := strconv.ParseFloat(match[2]+match[4], 64)
		kind := "handled"
		if key[1] == "failed_attempts" {
			kind = "failed"
		}
		out[kind+" "+key[2]] = v
	}
	return out
}
