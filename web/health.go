package web

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// Checker is one readiness condition.
type Checker struct {
	Name  string
	Check func(ctx context.Context) error
}

// RunChecks runs every checker with a short deadline each.
func RunChecks(ctx context.Context, checkers []Checker) (bool, []Check) {
	ready := true
	out := make([]Check, 0, len(checkers))
	for _, ch := range checkers {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := ch.Check(cctx)
		cancel()
		c := Check{Name: ch.Name, OK: err == nil}
		if err != nil {
			c.Error = err.Error()
			ready = false
		}
		out = append(out, c)
	}
	return ready, out
}

type readiness struct {
	Ready  bool    `json:"ready"`
	Checks []Check `json:"checks"`
}

// RegisterHealth adds /healthz (the process answers) and /readyz (every
// checker passes; 503 with the failing ones otherwise).
func RegisterHealth(e *echo.Echo, checkers []Checker) {
	e.GET("/healthz", func(c echo.Context) error {
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	})
	e.GET("/readyz", func(c echo.Context) error {
		ready, checks := RunChecks(c.Request().Context(), checkers)
		status := http.StatusOK
		if !ready {
			status = http.StatusServiceUnavailable
		}
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.JSON(status, readiness{Ready: ready, Checks: checks})
	})
}
