package saga

import (
	"crypto/subtle"
	"net/http"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/errs"
)

// RegisterRoutes adds the saga endpoints under api (/api/v1): the listing
// and one instance for anyone who can reach the API, retry and cancel under
// /admin for the holder of the admin token (403 admin_disabled when none is
// configured, as the dead-letter endpoints).
func (r *Registry) RegisterRoutes(api *echo.Group, db *pgxpool.Pool, adminToken string) {
	h := &handlers{r: r, db: db}
	api.GET("/sagas", h.handleSagaList)
	api.GET("/sagas/:type/:id", h.handleSagaGet)
	admin := requireToken(adminToken)
	api.POST("/admin/sagas/:type/:id/retry", h.handleSagaRetry, admin)
	api.POST("/admin/sagas/:type/:id/cancel", h.handleSagaCancel, admin)
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

var (
	errAdminOff   = errs.New(errs.Forbidden, "admin_disabled", "admin endpoints are off: set CAIRN_ADMIN_TOKEN to enable them")
	errAdminToken = errs.New(errs.Unauthorized, "unauthorized", "send the admin token as Authorization: Bearer <token>")
)

// requireToken is the consumer runtime's admin check (outbox/consumer,
// admin.go), per route here: the saga routes share the /api/v1 group.
func requireToken(token string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if token == "" {
				return errAdminOff
			}
			got, ok := strings.CutPrefix(c.Request().Header.Get(echo.HeaderAuthorization), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
				c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="cairn-admin"`)
				return errAdminToken
			}
			return next(c)
		}
	}
}
