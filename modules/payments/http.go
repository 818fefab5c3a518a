package payments

import (
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/errs"
	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/web"
)

// ErrNotFound: no payment with this id was recorded.
var ErrNotFound = errs.New(errs.NotFound, "payment_not_found", "no such payment")

func (m *Module) routes(g *echo.Group) {
	web.Handle(g, http.MethodGet, "/payments/:id", web.Op{
		Summary: "A payment: its amount, status and the gateway's authorization", Response: paymentResponse{},
		Errors: []int{http.StatusBadRequest},
	}, m.handlePaymentGet)
}

type paymentResponse struct {
	ID              string        `json:"id"`
	Amount          modules.Money `json:"amount"`
	Status          string        `json:"status"`
	AuthorizationID string        `json:"authorization_id"`
	Reason          string        `json:"reason,omitempty"`
	UpdatedAt       time.Time     `json:"updated_at"`
}

func (m *Module) handlePaymentGet(c echo.Context) error {
	id := c.Param("id")
	if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
		return errs.Validation(map[string]string{"id": "is not a valid payment id"})
	}
	p, ok, err := store{m.pool}.payment(c.Request().Context(), id)
	if err != nil {
		return err
	}
	if !ok {
		return ErrNotFound
	}
	return c.JSON(http.StatusOK, paymentResponse(p))
}
