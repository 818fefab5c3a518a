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

// RequireAdmin guards the operator's endpoints (dead letters, the lake,
// internal contracts): the request must carry Authorization: Bearer
// <token>, the scheme's name in any case, compared in constant time. With
// no token configured they answer 403 admin_disabled, a wrong or missing
// one 401 unauthorized.
func RequireAdmin(token string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if token == "" {
				return errAdminOff
			}
			got, ok := bearer(c.Request().Header.Get(echo.HeaderAuthorization))
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
				c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="cairn-admin"`)
				return errAdminToken
			}
			return next(c)
		}
	}
}

// bearer returns the token of an Authorization header in the Bearer
// scheme, whose name is case-insensitive (RFC 9110, 11.1): "bearer x" and
// "BEARER x" are as good as "Bearer x".
func bearer(header string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	token = strings.TrimSpace(token)
	return token, ok && strings.EqualFold(scheme, "Bearer") && token != ""
}
