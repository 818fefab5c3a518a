package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/outbox/lookup"
)

type eventsPage struct {
	Scope     string // what the lookup reaches
	By, Value string
	Searched  bool
	Events    []lookup.Event
	Tail      string
}

// lookupLimit caps the events a lookup shows.
const lookupLimit = 200

func (con *Console) handleEvents(c echo.Context) error {
	p := eventsPage{Scope: con.Finder.Scope(), By: c.QueryParam("by"), Value: strings.TrimSpace(c.QueryParam("value")), Tail: c.QueryParam("tail")}
	if p.Tail == "" {
		p.Tail = "events.>"
	}
	if p.Value == "" {
		return con.render(c, http.StatusOK, "events", p)
	}
	var q lookup.Query
	switch p.By {
	case "id":
		q.ID = p.Value
	case "key":
		q.Key = p.Value
	case "correlation":
		q.CorrelationID = p.Value
	case "causation":
		q.CausationID = p.Value
	default:
		return con.renderFlash(c, http.StatusBadRequest, "events", "look up by id, key, correlation or causation", p)
	}
	evs, err := con.Finder.Find(c.Request().Context(), q, lookupLimit)
	if err != nil {
		return err
	}
	p.Searched, p.Events = true, evs
	return con.render(c, http.StatusOK, "events", p)
}

// handleTail streams the events published on a subject filter as
// Server-Sent Events, one JSON object per event, with a comment every 15 s
// so proxies keep the connection open.
func (con *Console) handleTail(c echo.Context) error {
	filter := c.QueryParam("subject")
	if !lookup.ValidTailFilter(filter) {
		return echo.NewHTTPError(http.StatusBadRequest, "subject must be a filter under events. or internal., such as events.>")
	}
	w := c.Response()
	w.Header().Set(echo.HeaderContentType, "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": tailing "+filter+"\n\n")
	w.Flush()
	ctx := c.Request().Context()
	events := make(chan lookup.Event, 64)
	errc := make(chan error, 1)
	go func() {
		errc <- con.Tail(ctx, filter, func(e lookup.Event) {
			select { // the client may be gone: never block the subscription
			case events <- e:
			case <-ctx.Done():
			}
		})
	}()
	beat := time.NewTicker(15 * time.Second)
	defer beat.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			if err != nil {
				fmt.Fprintf(w, "event: error\ndata: %q\n\n", err.Error())
				w.Flush()
			}
			return nil
		case <-beat.C:
			fmt.Fprint(w, ": still here\n\n")
			w.Flush()
		case e := <-events:
			b, err := json.Marshal(tailLine{ID: e.ID, Type: e.Type, Subject: e.NATSSubject, Key: e.Subject, Time: e.Time, CorrelationID: e.CorrelationID})
			if err != nil {
				continue
			}
			fmt.Fprintf(w, "data: %s\n\n", b)
			w.Flush()
		}
	}
}

// tailLine is one event of the live tail: its envelope, not its data.
type tailLine struct {
	ID            string    `json:"id"`
	Type          string    `json:"type"`
	Subject       string    `json:"subject"`
	Key           string    `json:"key"`
	Time          time.Time `json:"time"`
	CorrelationID string    `json:"correlationid"`
}

// node is one event of a lineage, with the events it caused.
type node struct {
	Event    lookup.Event
	Children []*node
	Current  bool
}

type lineagePage struct {
	Scope   string // what the lookup reaches
	ID      string
	Root    *node
	Missing string // the causation id the root names but that cannot be reached
	Found   bool
}

// maxLineage bounds how many events a lineage walks.
const maxLineage = 200

// handleLineage draws the causation tree of an event from what the Finder
// reaches (the lake and the outbox): up its causation ids to the oldest event found, then down to
// every event caused by each.
func (con *Console) handleLineage(c echo.Context) error {
	ctx := c.Request().Context()
	id := c.Param("id")
	p := lineagePage{Scope: con.Finder.Scope(), ID: id}
	found, err := con.Finder.Find(ctx, lookup.Query{ID: id}, 1)
	if err != nil {
		return err
	}
	if len(found) == 0 {
		return con.renderFlash(c, http.StatusNotFound, "lineage", "No event "+id+" can be reached: it may be older than what the streams keep in reach.", p)
	}
	p.Found = true
	root := found[0]
	for steps := 0; steps < maxLineage && root.CausationID != "" && root.CausationID != root.ID; steps++ {
		up, err := con.Finder.Find(ctx, lookup.Query{ID: root.CausationID}, 1)
		if err != nil {
			return err
		}
		if len(up) == 0 {
			p.Missing = root.CausationID // a request id, or out of reach
			break
		}
		root = up[0]
	}
	budget := maxLineage
	var grow func(e lookup.Event) (*node, error)
	grow = func(e lookup.Event) (*node, error) {
		n := &node{Event: e, Current: e.ID == id}
		budget--
		kids, err := con.Finder.Find(ctx, lookup.Query{CausationID: e.ID}, lookupLimit)
		if err != nil {
			return nil, err
		}
		for _, k := range kids {
			if budget <= 0 || k.ID == e.ID {
				break
			}
			child, err := grow(k)
			if err != nil {
				return nil, err
			}
			n.Children = append(n.Children, child)
		}
		return n, nil
	}
	if p.Root, err = grow(root); err != nil {
		return err
	}
	return con.render(c, http.StatusOK, "lineage", p)
}
