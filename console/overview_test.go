package console_test

import (
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/config"
	"github.com/cairn-dev/cairn/testenv"
)

var (
	dataStarted = regexp.MustCompile(`data-started="([^"]+)"`)
	dataUptime  = regexp.MustCompile(`data-uptime="([^"]+)"`)
)

// The Overview's "Published here" and "Publish errors here" count since
// this replica started, and the page says when that was: a start time
// within the app's start-up, and an uptime that is the page's sample time
// less it.
func TestConsoleOverviewSaysSinceWhen(t *testing.T) {
	before := time.Now()
	a := testenv.StartApp(t, testenv.AppOptions{Config: func(c *config.Config) { c.AdminToken = token }})
	up := time.Now()
	b := newBrowser(t, a.URL)
	b.login()
	page := b.page("/console/")
	s, u := dataStarted.FindStringSubmatch(page), dataUptime.FindStringSubmatch(page)
	if s == nil || u == nil {
		t.Fatalf("the overview says neither start time nor uptime:\n%s", page)
	}
	startedSec, _ := strconv.ParseFloat(s[1], 64)
	started := time.UnixMilli(int64(startedSec*1000 + 0.5))
	if started.Before(before.Truncate(time.Millisecond)) || started.After(up) {
		t.Errorf("started %v, not within the app's start-up %v … %v", started, before, up)
	}
	uptime, _ := strconv.ParseFloat(u[1], 64)
	if loaded := time.Since(started).Seconds(); uptime <= 0 || uptime > loaded {
		t.Errorf("uptime %vs; the page was loaded at most %vs after the start", uptime, loaded)
	}
}
