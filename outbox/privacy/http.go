package privacy

import (
	"net/http"
	"strings"
	"unicode"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/errs"
	"github.com/cairn-dev/cairn/web"
)

// Register adds DELETE /api/v1/admin/subjects/:id under g (/api/v1),
// behind the admin token; wake (optional) is told of each request.
func Register(g *echo.Group, adminToken string, db *pgxpool.Pool, wake func()) {
	ag := g.Group("/admin", web.RequireAdmin(adminToken))
	web.Handle(ag, http.MethodDelete, "/subjects/:id", web.Op{
		Summary:     "Forget a person: destroy their key, have every module erase their data, remove their messages from the streams",
		Description: "Idempotent. The id is the person's as the event catalog's personal fields name them (a user id, an account id, a customer id).",
		Response:    Request{}, Status: http.StatusAccepted, Admin: true, Errors: []int{http.StatusBadRequest},
	}, func(c echo.Context) error {
		id := c.Param("id")
		if id == "" || len(id) > 200 || strings.IndexFunc(id, unicode.IsControl) >= 0 {
			return errs.Validation(map[string]string{"id": "must be a person's id: 1 to 200 characters, no control characters"})
		}
		req, err := Forget(c.Request().Context(), db, id)
		if err != nil {
			return err
		}
		if wake != nil {
			wake()
		}
		return c.JSON(http.StatusAccepted, req)
	})
}
