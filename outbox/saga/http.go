package saga

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/errs"
	"github.com/cairn-dev/cairn/web"
)

// RegisterRoutes adds the saga endpoints under api (/api/v1): the listing
// and one instance for anyone who can reach the API, retry and cancel under
// /admin for the holder of the admin token (403 admin_disabled when none is
// configured, as the dead-letter endpoints).
func (r *Registry) RegisterRoutes(api *echo.Group, db *pgxpool.Pool, adminToken string) {
	h := &handlers{r: r, db: db}
	web.Handle(api, http.MethodGet, "/sagas", web.Op{
		Summary: "Saga instances, most recently changed first", Response: listResponse{},
		Query: []web.Param{
			{Name: "type", Description: "only instances of this saga type"},
			{Name: "status", Description: "running, completed, stuck or cancelled"},
			{Name: "limit", Type: "integer", Description: "1 to 1000, default 100"},
		},
		Errors: []int{http.StatusBadRequest},
	}, h.handleSagaList)
	web.Handle(api, http.MethodGet, "/sagas/:type/:id", web.Op{
		Summary:  "A saga instance whole: its data, its history (each step, what caused it and what it sent) and its timers",
		Response: View{},
	}, h.handleSagaGet)
	// Per route: the saga routes share the /api/v1 group with the public ones.
	admin := web.RequireAdmin(adminToken)
	web.Handle(api, http.MethodPost, "/admin/sagas/:type/:id/retry", web.Op{
		Summary: "Retry a stuck saga instance as its saga defines; answers the instance", Response: View{}, Admin: true,
		Errors: []int{http.StatusConflict},
	}, h.handleSagaRetry, admin)
	web.Handle(api, http.MethodPost, "/admin/sagas/:type/:id/cancel", web.Op{
		Summary: "Cancel a saga instance: it compensates what it did, as its saga defines; answers the instance", Response: View{}, Admin: true,
		Errors: []int{http.StatusConflict},
	}, h.handleSagaCancel, admin)
}

type handlers struct {
	r  *Registry
	db *pgxpool.Pool
}

type listResponse struct {
	Sagas []Summary `json:"sagas"`
}

func (h *handlers) handleSagaList(c echo.Context) error {
	bad := map[string]string{}
	typ := c.QueryParam("type")
	if _, ok := h.r.saga(typ); typ != "" && !ok {
		bad["type"] = "is not a saga type; known: " + strings.Join(h.r.Types(), ", ")
	}
	status := Status(c.QueryParam("status"))
	switch status {
	case "", Running, Completed, Stuck, Cancelled:
	default:
		bad["status"] = "must be running, completed, stuck or cancelled"
	}
	limit := 100
	if raw := c.QueryParam("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > 1000 {
			bad["limit"] = "must be a whole number from 1 to 1000"
		}
		limit = n
	}
	if len(bad) > 0 {
		return errs.Validation(bad)
	}
	list, err := List(c.Request().Context(), h.db, typ, status, limit)
	if err != nil {
		return err
	}
	if list == nil {
		list = []Summary{}
	}
	return c.JSON(http.StatusOK, listResponse{Sagas: list})
}

func (h *handlers) handleSagaGet(c echo.Context) error {
	v, err := Get(c.Request().Context(), h.db, c.Param("type"), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

func (h *handlers) handleSagaRetry(c echo.Context) error {
	ctx := c.Request().Context()
	if err := h.r.Retry(ctx, h.db, c.Param("type"), c.Param("id")); err != nil {
		return err
	}
	return h.handleSagaGet(c)
}

func (h *handlers) handleSagaCancel(c echo.Context) error {
	ctx := c.Request().Context()
	if err := h.r.Cancel(ctx, h.db, c.Param("type"), c.Param("id")); err != nil {
		return err
	}
	return h.handleSagaGet(c)
}
