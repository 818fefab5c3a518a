package web

import (
	"bytes"
	"crypto/rand"
	_ "embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// consoleHTML is the operator console page: markup, stylesheet and script in
// one file, so the binary serves it without touching the network or disk.
//
//go:embed console.html
var consoleHTML string

var consoleTmpl = template.Must(template.New("console.html").Funcs(template.FuncMap{
	"age":           consoleAge,
	"stateClass":    consoleStateClass,
	"consumerClass": consoleConsumerClass,
	"stateLabel":    func(s string) string { return strings.ReplaceAll(s, "_", " ") },
}).Parse(consoleHTML))

// consolePage is what console.html is rendered with.
type consolePage struct {
	Status
	// Nonce lets the inline <style> and <script> through the page's
	// Content-Security-Policy; it is fresh for every response.
	Nonce string
	// Updated is when this page's data was gathered, for "last updated".
	Updated time.Time
}

// RegisterConsole serves the operator console on e:
//
//   - GET /              the console page, rendered on the server from the
//     current Status so it is useful without JavaScript; a small inline
//     script then refreshes it from the JSON endpoint every 2 seconds.
//   - GET /api/v1/status the current Status as JSON, never cached.
//
// status is called once per request, with the request's context.
func RegisterConsole(e *echo.Echo, status StatusFunc) {
	e.GET("/", func(c echo.Context) error {
		nonce, err := consoleNonce()
		if err != nil {
			return err
		}
		page := consolePage{
			Status:  status(c.Request().Context()),
			Nonce:   nonce,
			Updated: time.Now().UTC(),
		}
		// Render into a buffer so a template error becomes a clean 500
		// instead of half a page.
		var buf bytes.Buffer
		if err := consoleTmpl.Execute(&buf, page); err != nil {
			return fmt.Errorf("render console: %w", err)
		}
		h := c.Response().Header()
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", "default-src 'none'; "+
			"script-src 'nonce-"+nonce+"'; style-src 'nonce-"+nonce+"'; "+
			"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		return c.HTMLBlob(http.StatusOK, buf.Bytes())
	})

	Handle(e, http.MethodGet, "/api/v1/status", Op{Summary: "What the operator console shows: readiness, relay, consumers", Response: Status{}}, func(c echo.Context) error {
		s := status(c.Request().Context())
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.JSON(http.StatusOK, s)
	})
}

func consoleNonce() (string, error) {
	var b [18]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("console nonce: %w", err)
	}
	// URL-safe alphabet: html/template would write a '+' in the nonce
	// attribute as "&#43;", which no longer matches the header byte for byte.
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// consoleAge formats an age in seconds for people: "4.2s", "3m 07s",
// "2h 05m", "3d 04h". The page's script has the same function (fmtAge);
// keep the two in step.
func consoleAge(sec float64) string {
	if math.IsNaN(sec) || sec < 0 {
		sec = 0
	}
	switch {
	case sec < 60:
		return fmt.Sprintf("%.1fs", sec)
	case sec < 3600:
		s := int64(sec)
		return fmt.Sprintf("%dm %02ds", s/60, s%60)
	case sec < 86400:
		m := int64(sec) / 60
		return fmt.Sprintf("%dh %02dm", m/60, m%60)
	default:
		h := int64(sec) / 3600
		return fmt.Sprintf("%dd %02dh", h/24, h%24)
	}
}

// consoleStateClass maps a relay state to a CSS class, so only known states
// get a colour. The page's script has the same mapping.
func consoleStateClass(state string) string {
	switch state {
	case "leader", "standby", "stopped":
		return "state-" + state
	}
	return "state-unknown"
}

// consoleConsumerClass maps a consumer state to a CSS class, as
// consoleStateClass does for the relay. The page's script has the same
// mapping.
func consoleConsumerClass(state string) string {
	switch state {
	case "consuming", "starting", "paused", "standing_by", "failing", "stopped":
		return "cstate-" + state
	}
	return "cstate-unknown"
}
