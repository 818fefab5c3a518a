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
	g.POST("/orders", m.handleOrderPlace)
	g.GET("/orders/:id", m.handleOrderGet)
	g.POST("/orders/:id/cancel", m.handleOrderCancel)
	g.GET("/orders/:id/updates", m.handleOrderUpdates)
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
