package console

import (
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/outbox/consumer"
	"github.com/cairn-dev/cairn/telemetry"
	"github.com/cairn-dev/cairn/web"
)

type overviewPage struct {
	S       telemetry.Snapshot
	Holder  string
	Ready   bool
	Checks  []web.Check
	Paused  int
	Dead    int64
	Behind  int
	Leading bool
	// Started is when this replica's counters started; Uptime is the
	// time since, at the snapshot.
	Started time.Time
	Uptime  time.Duration
}

func (con *Console) handleOverview(c echo.Context) error {
	ctx := c.Request().Context()
	s := con.Metrics.Snapshot(ctx)
	p := overviewPage{S: s, Holder: con.Holder, Leading: s.RelayState == "leader", Started: con.Started}
	if !con.Started.IsZero() {
		p.Uptime = s.Now.Sub(con.Started)
	}
	p.Ready, p.Checks = web.RunChecks(ctx, con.Checks)
	for _, f := range s.Consumers {
		if len(f.Pauses) > 0 {
			p.Paused++
		}
		p.Dead += f.DeadLetters.Count
		if f.Backlog.Pending > 0 || f.Backlog.AckPending > 0 {
			p.Behind++
		}
	}
	return con.render(c, http.StatusOK, "overview", p)
}

// consumersPage is the snapshot with each consumer's rates over the
// interval Over since an earlier load of the page.
type consumersPage struct {
	telemetry.Snapshot
	Rates map[string]consumerRate
	Over  time.Duration
}

func (con *Console) handleConsumers(c echo.Context) error {
	s := con.Metrics.Snapshot(c.Request().Context())
	p := consumersPage{Snapshot: s}
	p.Rates, p.Over = con.rates.observe(s)
	return con.render(c, http.StatusOK, "consumers", p)
}

func (con *Console) handlePause(c echo.Context) error {
	if err := con.Consumers.Pause(c.Request().Context(), c.Param("name"), c.FormValue("reason")); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/console/consumers")
}

func (con *Console) handleResume(c echo.Context) error {
	if err := con.Consumers.Resume(c.Request().Context(), c.Param("name")); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/console/consumers")
}

// filterForm is the dead letters' filter, as the form and the query carry it.
type filterForm struct {
	Consumer, Type, Error, From, To string
}

func readFilter(get func(string) string) (filterForm, consumer.DeadLetterFilter, string) {
	f := filterForm{Consumer: get("consumer"), Type: get("type"), Error: get("error"), From: get("from"), To: get("to")}
	q := consumer.DeadLetterFilter{Consumer: f.Consumer, EventType: f.Type, Error: f.Error}
	var bad []string
	for _, t := range []struct {
		raw string
		dst *time.Time
		nm  string
	}{{f.From, &q.FailedFrom, "from"}, {f.To, &q.FailedTo, "to"}} {
		if t.raw == "" {
			continue
		}
		v, err := parseTime(t.raw)
		if err != nil {
			bad = append(bad, t.nm+" must be a time like 2026-11-30T14:00")
			continue
		}
		*t.dst = v
	}
	return f, q, strings.Join(bad, "; ")
}

func parseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errors.New("not a time")
}

type deadLettersPage struct {
	Filter    filterForm
	Consumers []string
	Letters   []consumer.DeadLetter
	Total     int64
	Shown     int
	Query     string
}

const pageSize = 100

func (con *Console) handleDeadLetters(c echo.Context) error {
	form, q, bad := readFilter(c.QueryParam)
	p := deadLettersPage{Filter: form, Query: c.Request().URL.RawQuery}
	for _, s := range con.Consumers.Status() {
		p.Consumers = append(p.Consumers, s.Consumer)
	}
	if bad != "" {
		return con.renderFlash(c, http.StatusBadRequest, "deadletters", bad, p)
	}
	var err error
	if p.Letters, p.Total, err = con.Consumers.FindDeadLetters(c.Request().Context(), q, pageSize); err != nil {
		return err
	}
	p.Shown = len(p.Letters)
	return con.render(c, http.StatusOK, "deadletters", p)
}

// maxBulk caps one bulk action.
const maxBulk = 10_000

type confirmPage struct {
	Action string
	Filter filterForm
	IDs    string
	Count  int
	Capped bool
}

// handleBulkConfirm counts, now, the dead letters the filter selects and
// asks to confirm the action on exactly those: their ids go into the
// confirmation form, so dead letters parked after this moment are not
// touched.
func (con *Console) handleBulkConfirm(c echo.Context) error {
	action := c.FormValue("action")
	if action != "retry" && action != "discard" {
		return echo.NewHTTPError(http.StatusBadRequest, "action must be retry or discard")
	}
	form, q, bad := readFilter(c.FormValue)
	if bad != "" {
		return echo.NewHTTPError(http.StatusBadRequest, bad)
	}
	ids, err := con.Consumers.DeadLetterIDs(c.Request().Context(), q, maxBulk)
	if err != nil {
		return err
	}
	return con.render(c, http.StatusOK, "confirm", confirmPage{Action: action, Filter: form, IDs: strings.Join(ids, ","),
		Count: len(ids), Capped: len(ids) == maxBulk})
}

type resultsPage struct {
	Action  string
	Results []consumer.BulkResult
	Counts  []outcomeCount
}

type outcomeCount struct {
	Outcome string
	N       int
}

func (con *Console) handleBulk(c echo.Context) error {
	action := c.FormValue("action")
	var ids []string
	for _, id := range strings.Split(c.FormValue("ids"), ",") {
		if id = strings.TrimSpace(id); id != "" {
			ids = append(ids, id)
		}
	}
	if len(ids) > maxBulk {
		return echo.NewHTTPError(http.StatusBadRequest, "too many dead letters in one action")
	}
	var results []consumer.BulkResult
	var err error
	switch action {
	case "retry":
		results, err = con.Consumers.RetryMany(c.Request().Context(), ids)
	case "discard":
		results, err = con.Consumers.DiscardMany(c.Request().Context(), ids)
	default:
		return echo.NewHTTPError(http.StatusBadRequest, "action must be retry or discard")
	}
	if err != nil {
		return err
	}
	n := map[string]int{}
	for _, r := range results {
		n[r.Outcome]++
	}
	p := resultsPage{Action: action, Results: results}
	for o, k := range n {
		p.Counts = append(p.Counts, outcomeCount{o, k})
	}
	sort.Slice(p.Counts, func(i, j int) bool { return p.Counts[i].Outcome < p.Counts[j].Outcome })
	return con.render(c, http.StatusOK, "results", p)
}

type deadLetterPage struct {
	D       consumer.DeadLetter
	Payload string
}

func (con *Console) handleDeadLetter(c echo.Context) error {
	d, err := con.Consumers.DeadLetter(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return con.render(c, http.StatusOK, "deadletter", deadLetterPage{D: d, Payload: indent(d.Event)})
}

func (con *Console) handleRetryOne(c echo.Context) error {
	id := c.Param("id")
	err := con.Consumers.Retry(c.Request().Context(), id)
	if errors.Is(err, consumer.ErrRetryFailed) {
		d, derr := con.Consumers.DeadLetter(c.Request().Context(), id)
		if derr != nil {
			return derr
		}
		return con.renderFlash(c, http.StatusConflict, "deadletter", "The handler failed again: "+err.Error(), deadLetterPage{D: d, Payload: indent(d.Event)})
	}
	if err != nil {
		return err
	}
	return con.renderFlash(c, http.StatusOK, "results", "", resultsPage{Action: "retry",
		Results: []consumer.BulkResult{{ID: id, Outcome: consumer.BulkDelivered}}, Counts: []outcomeCount{{consumer.BulkDelivered, 1}}})
}

func (con *Console) handleDiscardOne(c echo.Context) error {
	if err := con.Consumers.Discard(c.Request().Context(), c.Param("id")); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/console/dead-letters")
}

func indent(raw []byte) string {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return string(raw)
	}
	return string(b)
}
