package orders

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/errs"
	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/web"
)

func (m *Module) routes(g *echo.Group) {
	web.Handle(g, http.MethodPost, "/orders", web.Op{
		Summary: "Place an order; its fulfilment saga reserves credit and stock and takes the payment", Request: placeRequest{},
		Response: orderResponse{}, Status: http.StatusCreated, Errors: []int{http.StatusNotFound, http.StatusUnprocessableEntity},
	}, m.handleOrderPlace)
	web.Handle(g, http.MethodGet, "/orders/:id", web.Op{
		Summary: "An order, its status and its history of status changes", Response: orderResponse{},
		Errors: []int{http.StatusBadRequest},
	}, m.handleOrderGet)
	web.Handle(g, http.MethodPost, "/orders/:id/cancel", web.Op{
		Summary: "Ask to cancel an order; it is cancelled once its saga has given back what was done", Response: orderResponse{},
		Status: http.StatusAccepted, Errors: []int{http.StatusBadRequest, http.StatusConflict},
	}, m.handleOrderCancel)
	web.Handle(g, http.MethodGet, "/orders/:id/updates", web.Op{
		Summary: "An order's status changes as Server-Sent Events, until its outcome is known",
		Description: "One `event: status` per change, its `id` the change's seq, the history first (or what follows " +
			"Last-Event-ID); the stream ends once the order is rejected, cancelled, or approved with no cancel asked for.",
		Response: changeMessage{}, Stream: true, Errors: []int{http.StatusBadRequest},
		Header: []web.Param{{Name: "Last-Event-ID", Type: "integer", Description: "the seq of the last event received, to resume after it"}},
	}, m.handleOrderUpdates)
}

type placeRequest struct {
	CustomerID *string        `json:"customer_id"`
	Lines      *[]lineRequest `json:"lines"`
}

type lineRequest struct {
	SKU      string `json:"sku"`
	Quantity int64  `json:"quantity"`
}

type orderResponse struct {
	ID              string           `json:"id"`
	CustomerID      string           `json:"customer_id"`
	Lines           []Line           `json:"lines"`
	Total           modules.Money    `json:"total"`
	Status          string           `json:"status"`
	Reason          string           `json:"reason,omitempty"`
	CancelRequested bool             `json:"cancel_requested,omitempty"`
	CreatedAt       time.Time        `json:"created_at"`
	UpdatedAt       time.Time        `json:"updated_at"`
	History         *[]changeMessage `json:"history,omitempty"` // GET only
}

// changeMessage is one status change, in the history and as a
// Server-Sent Event; From is null for the first.
type changeMessage struct {
	At     time.Time `json:"at"`
	From   *string   `json:"from"`
	To     string    `json:"to"`
	Cause  string    `json:"cause"`
	Reason string    `json:"reason,omitempty"` // SSE only, with a final status
}

func toResponse(o Order) orderResponse {
	return orderResponse{ID: o.ID, CustomerID: o.CustomerID, Lines: o.Lines, Total: o.Total, Status: o.Status,
		Reason: o.Reason, CancelRequested: o.CancelRequested, CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt}
}

func toChange(c StatusChange) changeMessage {
	m := changeMessage{At: c.At, To: c.To, Cause: c.Cause}
	if c.From != "" {
		from := c.From
		m.From = &from
	}
	return m
}

func (m *Module) handleOrderPlace(c echo.Context) error {
	var req placeRequest
	if err := web.BindJSON(c, &req); err != nil {
		return err
	}
	missing := map[string]string{}
	if req.CustomerID == nil {
		missing["customer_id"] = "is required"
	}
	if req.Lines == nil {
		missing["lines"] = "is required: [{\"sku\",\"quantity\"}]"
	}
	if len(missing) > 0 {
		return errs.Validation(missing)
	}
	lines := make([]LineRequest, len(*req.Lines))
	for i, l := range *req.Lines {
		lines[i] = LineRequest(l)
	}
	o, err := m.Place(c.Request().Context(), *req.CustomerID, lines)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, toResponse(o))
}

func (m *Module) handleOrderGet(c echo.Context) error {
	o, h, err := m.Order(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	resp := toResponse(o)
	history := make([]changeMessage, len(h))
	for i, ch := range h {
		history[i] = toChange(ch)
	}
	resp.History = &history
	return c.JSON(http.StatusOK, resp)
}

// handleOrderCancel answers 202: the order is cancelled once its saga has
// given back what was done (GET it, or follow its updates).
func (m *Module) handleOrderCancel(c echo.Context) error {
	o, err := m.Cancel(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, toResponse(o))
}
