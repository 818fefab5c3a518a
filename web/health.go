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
	// Relay and Consumers say why, beyond pass or fail: the relay's lease
	// and each consumer's state (consuming, standing_by, paused with its
	// reason, failing with its last error) on this replica.
	Relay     *ReadyRelay      `json:"relay,omitempty"`
	Consumers []ConsumerStatus `json:"consumers,omitempty"`
}

// ReadyRelay is the relay as /readyz shows it: its state and lease.
type ReadyRelay struct {
	State string      `json:"state"`
	Lease LeaseStatus `json:"lease"`
}

// ReadyDetail gives /readyz the relay's lease and each consumer's state;
// it must be cheap (no database query): probes call it often.
type ReadyDetail func() (ReadyRelay, []ConsumerStatus)

// RegisterHealth adds /healthz (the process answers) and /readyz (every
// checker passes; 503 with the failing ones otherwise), with the relay's
// lease and each consumer's state when detail is given.
func RegisterHealth(e *echo.Echo, checkers []Checker, detail ReadyDetail) {
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
		body := readiness{Ready: ready, Checks: checks}
		if detail != nil {
			r, cs := detail()
			body.Relay, body.Consumers = &r, cs
		}
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.JSON(status, body)
	})
}
