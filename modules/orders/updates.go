package orders

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/errs"
)

// How often an open stream looks for a new status change, and how often
// it sends a comment so that proxies keep an idle stream open.
const (
	updatesPollEvery = 100 * time.Millisecond
	updatesKeepAlive = 15 * time.Second
)

// handleOrderUpdates streams an order's status changes as Server-Sent
// Events, one `event: status` per change, the history first (or what
// follows Last-Event-ID, the seq of the last one received), with data
// {"at","from","to","cause","reason"?}. The stream ends once the outcome is
// known: rejected, cancelled, or approved with no cancel asked for. It
// ends too when the server shuts down; reconnect with Last-Event-ID.
func (m *Module) handleOrderUpdates(c echo.Context) error {
	ctx := c.Request().Context()
	id := c.Param("id")
	if !validID(id) {
		return errs.Validation(map[string]string{"id": "is not a valid order id"})
	}
	after := 0
	if raw := c.Request().Header.Get("Last-Event-ID"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 0 {
			return errs.Validation(map[string]string{"Last-Event-ID": "must be the seq of an event of this stream"})
		}
		after = n
	}
	s := store{m.pool}
	o, err := s.order(ctx, id)
	if err != nil {
		return err
	}
	w := c.Response()
	w.Header().Set(echo.HeaderContentType, "text/event-stream")
	w.Header().Set(echo.HeaderCacheControl, "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	w.Flush()

	poll := time.NewTicker(updatesPollEvery)
	defer poll.Stop()
	lastWrite := time.Now()
	last := o.Status // the status the client knows once the history is sent
	for {
		changes, err := s.changes(ctx, id, after)
		if err != nil {
			return err // the stream has started: the client sees it end
		}
		for _, ch := range changes {
			msg := toChange(ch)
			if ch.To == StatusRejected || ch.To == StatusCancelled {
				if o, err = s.order(ctx, id); err != nil {
					return err
				}
				msg.Reason = o.Reason
			}
			data, _ := json.Marshal(msg)
			if _, err := fmt.Fprintf(w, "id: %d\nevent: status\ndata: %s\n\n", ch.Seq, data); err != nil {
				return nil // the client went away
			}
			after, last = ch.Seq, ch.To
		}
		if len(changes) > 0 {
			w.Flush()
			lastWrite = time.Now()
			if last == StatusApproved { // is a cancel pending?
				if o, err = s.order(ctx, id); err != nil {
					return err
				}
			}
		}
		if outcomeKnown(last, o.CancelRequested) {
			return nil
		}
		if time.Since(lastWrite) > updatesKeepAlive {
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return nil
			}
			w.Flush()
			lastWrite = time.Now()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-m.closing:
			return nil
		case <-poll.C:
		}
	}
}

// outcomeKnown reports whether an order's stream can end at status: it is
// rejected or cancelled, or approved with no cancel pending.
func outcomeKnown(status string, cancelRequested bool) bool {
	switch status {
	case StatusRejected, StatusCancelled:
		return true
	case StatusApproved:
		return !cancelRequested
	}
	return false
}
