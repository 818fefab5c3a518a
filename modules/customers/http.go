package customers

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/errs"
	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/web"
)

func (m *Module) routes(g *echo.Group) {
	web.Handle(g, http.MethodPost, "/customers", web.Op{
		Summary: "Register a customer with a credit limit", Request: createRequest{}, Response: customerResponse{},
		Status: http.StatusCreated,
	}, m.handleCustomerCreate)
	web.Handle(g, http.MethodGet, "/customers/:id", web.Op{
		Summary: "A customer, its available credit and its reservations, newest first", Response: customerResponse{},
		Query:  []web.Param{{Name: "reservations", Type: "integer", Description: "how many reservations to list, 0 to 1000, default 100"}},
		Errors: []int{http.StatusBadRequest},
	}, m.handleCustomerGet)
}

type createRequest struct {
	Name        *string        `json:"name"`
	CreditLimit *modules.Money `json:"credit_limit"`
}

type customerResponse struct {
	ID              string                 `json:"id"`
	Name            string                 `json:"name"`
	CreditLimit     modules.Money          `json:"credit_limit"`
	AvailableCredit modules.Money          `json:"available_credit"`
	CreatedAt       time.Time              `json:"created_at"`
	Reservations    *[]reservationResponse `json:"reservations,omitempty"` // GET only
}

type reservationResponse struct {
	OrderID   string        `json:"order_id"`
	Amount    modules.Money `json:"amount"`
	Status    string        `json:"status"`
	CreatedAt time.Time     `json:"created_at"`
}

func toResponse(c Customer) customerResponse {
	return customerResponse{ID: c.ID, Name: c.Name, CreditLimit: c.CreditLimit, AvailableCredit: c.Available(), CreatedAt: c.CreatedAt}
}

func (m *Module) handleCustomerCreate(c echo.Context) error {
	var req createRequest
	if err := web.BindJSON(c, &req); err != nil {
		return err
	}
	missing := map[string]string{}
	if req.Name == nil {
		missing["name"] = "is required"
	}
	if req.CreditLimit == nil {
		missing["credit_limit"] = "is required: {\"amount\",\"currency\"}"
	}
	if len(missing) > 0 {
		return errs.Validation(missing)
	}
	cu, err := m.Create(c.Request().Context(), *req.Name, *req.CreditLimit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, toResponse(cu))
}

func (m *Module) handleCustomerGet(c echo.Context) error {
	limit := 100
	if raw := c.QueryParam("reservations"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 0 || n > 1000 {
			return errs.Validation(map[string]string{"reservations": "must be a whole number from 0 to 1000"})
		}
		limit = n
	}
	cu, rs, err := m.Customer(c.Request().Context(), c.Param("id"), limit)
	if err != nil {
		return err
	}
	resp := toResponse(cu)
	list := make([]reservationResponse, len(rs))
	for i, r := range rs {
		list[i] = reservationResponse(r)
	}
	resp.Reservations = &list
	return c.JSON(http.StatusOK, resp)
}
