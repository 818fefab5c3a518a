package users

import (
	_ "embed"
	"net/http"

	"github.com/labstack/echo/v4"
)

var (
	//go:embed activate.html
	activateHTML []byte
	//go:embed activate.js
	activateJS []byte
)

// registerActivatePage serves /activate, the page the activation email
// links to: it posts the token from the link to POST /api/v1/users/activate.
func registerActivatePage(e *echo.Group) {
	e.GET("/activate", func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'")
		h.Set("Referrer-Policy", "no-referrer") // the token is in the URL
		h.Set("Cache-Control", "no-store")
		return c.Blob(http.StatusOK, "text/html; charset=utf-8", activateHTML)
	})
	e.GET("/activate.js", func(c echo.Context) error {
		return c.Blob(http.StatusOK, "text/javascript; charset=utf-8", activateJS)
	})
}
