package lake

import (
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/errs"
	"github.com/cairn-dev/cairn/web"
)

// DefaultLimit and MaxLimit bound a page of GET /api/v1/lake/events; a
// larger limit is capped, not refused. NDJSON has no cap.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

const ndjson = "application/x-ndjson"

var (
	errNoEvent = errs.New(errs.NotFound, "not_found", "the lake holds no event with this id")
	errNoState = errs.New(errs.NotFound, "not_found", "the lake holds no event of this key that a module folds, at or before as_of")
	typeSyntax = regexp.MustCompile(`^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*\.v[1-9][0-9]*$`)
)

// Register adds the lake's endpoints under g (/api/v1), behind the admin
// token: the lake holds personal data and internal events.
func (l *Lake) Register(g *echo.Group, adminToken string) {
	lg := g.Group("/lake", web.RequireAdmin(adminToken))
	asOf := web.Param{Name: "as_of", Format: "date-time", Description: "RFC 3339; default now"}
	accept := []web.Param{{Name: "Accept", Description: ndjson + " streams one JSON object per line, with no limit"}}
	web.Handle(lg, http.MethodGet, "/events", web.Op{
		Summary: "Events of the lake in position order, filtered", Response: eventsResponse{}, Admin: true,
		Query: []web.Param{
			{Name: "after", Type: "integer", Description: "position to start after (next_after of the previous page)"},
			{Name: "limit", Type: "integer", Description: "default 100; more than 1000 is capped"},
			{Name: "type", Description: "event type, e.g. ledger.deposited.v1"},
			{Name: "subject", Description: "the key (CloudEvents subject)"},
			{Name: "correlation_id"},
			{Name: "from", Format: "date-time"}, {Name: "to", Format: "date-time"},
		},
		Header: accept, Errors: []int{http.StatusBadRequest},
	}, l.handleEvents)
	web.Handle(lg, http.MethodGet, "/events/:id/lineage", web.Op{
		Summary: "An event's causes, effects and correlated events", Response: Lineage{}, Admin: true,
		Errors: []int{http.StatusBadRequest},
	}, l.handleLineage)
	web.Handle(lg, http.MethodGet, "/subjects/:key/events", web.Op{
		Summary: "The audit trail of one entity: every event with this key up to as_of", Response: subjectEventsResponse{}, Admin: true,
		Query: []web.Param{asOf}, Header: accept, Errors: []int{http.StatusBadRequest},
	}, l.handleSubjectEvents)
	web.Handle(lg, http.MethodGet, "/subjects/:key/state", web.Op{
		Summary: "An entity as of a moment, folded from its events", Response: State{}, Admin: true,
		Query:  []web.Param{asOf, {Name: "type", Description: "the aggregate to fold (orders.order, payments.payment, ...) when several share the key; default: the one that reads the key's first event"}},
		Errors: []int{http.StatusBadRequest},
	}, l.handleSubjectState)
}

type subjectEventsResponse struct {
	Events []Item `json:"events"`
}

type eventsResponse struct {
	Events    []Item `json:"events"`
	NextAfter int64  `json:"next_after"`
}

func (l *Lake) handleEvents(c echo.Context) error {
	f, err := parseFilter(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if wantsNDJSON(c) {
		return l.streamNDJSON(c, func(each func(Item) error) error { return l.Events(ctx, f, each) })
	}
	if f.Limit == 0 {
		f.Limit = DefaultLimit
	}
	f.Limit = min(f.Limit, MaxLimit)
	resp := eventsResponse{Events: []Item{}, NextAfter: f.After}
	err = l.Events(ctx, f, func(it Item) error {
		resp.Events = append(resp.Events, it)
		resp.NextAfter = it.Position
		return nil
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, resp)
}

// parseFilter reads the query of GET /lake/events; every bad parameter is
// named at once.
func parseFilter(c echo.Context) (Filter, error) {
	var f Filter
	bad := map[string]string{}
	q := c.QueryParams()
	if _, ok := q["after"]; ok {
		n, err := strconv.ParseInt(q.Get("after"), 10, 64)
		if err != nil || n < 0 {
			bad["after"] = "must be a position: a whole number, 0 or more"
		}
		f.After = n
	}
	if _, ok := q["limit"]; ok {
		n, err := strconv.ParseInt(q.Get("limit"), 10, 64)
		switch {
		case err != nil && isNumeric(q.Get("limit")):
			f.Limit = int(^uint(0) >> 1) // too large for int64: capped like any large limit
		case err != nil || n < 1:
			bad["limit"] = "must be a whole number, 1 or more (more than 1000 is taken as 1000)"
		default:
			f.Limit = int(min(n, int64(^uint(0)>>1)))
		}
	}
	text := func(name string, dst *string) {
		if _, ok := q[name]; !ok {
			return
		}
		v := q.Get(name)
		if v == "" || len(v) > 1000 {
			bad[name] = "must not be empty, and at most 1000 characters"
			return
		}
		*dst = v
	}
	text("type", &f.Type)
	if f.Type != "" && !typeSyntax.MatchString(f.Type) {
		bad["type"] = "must be an event type such as ledger.deposited.v1"
	}
	text("subject", &f.Subject)
	text("correlation_id", &f.CorrelationID)
	f.From = parseTime(q, "from", bad)
	f.To = parseTime(q, "to", bad)
	if !f.From.IsZero() && !f.To.IsZero() && !f.To.After(f.From) {
		bad["to"] = "must be after from"
	}
	if len(bad) > 0 {
		return f, errs.Validation(bad)
	}
	return f, nil
}

func isNumeric(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// parseTime reads an RFC 3339 parameter; absent is the zero time.
func parseTime(q map[string][]string, name string, bad map[string]string) time.Time {
	v, ok := q[name]
	if !ok {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, v[0])
	if err != nil {
		bad[name] = "must be an RFC 3339 time such as 2026-11-23T10:00:00Z"
	}
	return t
}

// asOf reads as_of: now when absent.
func asOf(c echo.Context) (time.Time, error) {
	bad := map[string]string{}
	t := parseTime(c.QueryParams(), "as_of", bad)
	if len(bad) > 0 {
		return t, errs.Validation(bad)
	}
	if t.IsZero() {
		t = time.Now().UTC()
	}
	return t, nil
}

func (l *Lake) handleSubjectEvents(c echo.Context) error {
	t, err := asOf(c)
	if err != nil {
		return err
	}
	key, ctx := c.Param("key"), c.Request().Context()
	read := func(each func(Item) error) error { return l.SubjectEvents(ctx, key, t, each) }
	if wantsNDJSON(c) {
		return l.streamNDJSON(c, read)
	}
	var items []Item
	if err := read(func(it Item) error { items = append(items, it); return nil }); err != nil {
		return err
	}
	if items == nil {
		items = []Item{}
	}
	return c.JSON(http.StatusOK, subjectEventsResponse{Events: items})
}

func (l *Lake) handleSubjectState(c echo.Context) error {
	q, bad := c.QueryParams(), map[string]string{}
	t := parseTime(q, "as_of", bad)
	if t.IsZero() {
		t = time.Now().UTC()
	}
	aggregate, given := q["type"]
	if given && (aggregate[0] == "" || len(aggregate[0]) > 200) {
		bad["type"] = "must name an aggregate, such as orders.order"
	}
	if len(bad) > 0 {
		return errs.Validation(bad)
	}
	var agg string
	if given {
		agg = aggregate[0]
	}
	st, err := l.State(c.Request().Context(), c.Param("key"), agg, t)
	if errors.Is(err, ErrNoFold) {
		return errs.Validation(map[string]string{"type": "no module folds an aggregate of this name; they are " + strings.Join(l.folds.Names(), ", ")})
	}
	if errors.Is(err, ErrNoState) {
		return errNoState
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, st)
}

func (l *Lake) handleLineage(c echo.Context) error {
	u, err := uuid.Parse(c.Param("id"))
	if err != nil || len(c.Param("id")) != 36 {
		return errs.Validation(map[string]string{"id": "must be an event id (a UUID)"})
	}
	lin, err := l.Lineage(c.Request().Context(), u.String())
	if errors.Is(err, ErrNoEvent) {
		return errNoEvent
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, lin)
}

func wantsNDJSON(c echo.Context) bool {
	return strings.Contains(c.Request().Header.Get(echo.HeaderAccept), ndjson)
}

// streamNDJSON writes one item a line as read produces them, flushing every
// so often, so a backfill of millions of events holds neither the lake nor
// the answer in memory.
func (l *Lake) streamNDJSON(c echo.Context, read func(func(Item) error) error) error {
	w := c.Response()
	w.Header().Set(echo.HeaderContentType, ndjson)
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	n := 0
	err := read(func(it Item) error {
		if err := enc.Encode(it); err != nil {
			return err
		}
		if n++; n%500 == 0 {
			w.Flush()
		}
		return nil
	})
	w.Flush()
	if err != nil {
		// The status is sent: the client sees the stream end early.
		l.log.Warn("lake: NDJSON stream cut short", "err", err, "path", c.Path(), "lines", n)
	}
	return err
}
