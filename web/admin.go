package web

import (
	"crypto/subtle"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/errs"
)

var (
	errAdminOff   = errs.New(errs.Forbidden, "admin_disabled", "admin endpoints are off: set CAIRN_ADMIN_TOKEN to enable them")
	errAdminToken = errs.New(errs.Unauthorized, "unauthorized", "send the admin token as Authorization: Bearer <token>")
)

// RequireAdmin guards the operator's endpoints (dead letters, the lake):
// the request must carry Authorization: Bearer <token>, compared in constant
// time. With no token configured they answer 403 admin_disabled, a wrong or
// missing one 401 unauthorized.
func RequireAdmin(token string) echo.MiddlewareFunc {
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
