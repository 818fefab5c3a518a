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

// RequireAdmin lets a request through only with the admin token, as
// Authorization: Bearer <token>; with no token configured every request is
// 403 admin_disabled.
func RequireAdmin(token string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if token == "" {
				return errAdminOff
			}
			if !bearerIs(c, token) {
				c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="cairn-admin"`)
				return errAdminToken
			}
			return next(c)
		}
	}
}

func bearerIs(c echo.Context, token string) bool {
	got, ok := strings.CutPrefix(c.Request().Header.Get(echo.HeaderAuthorization), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}
