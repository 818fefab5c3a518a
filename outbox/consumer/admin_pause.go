package consumer

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/web"
)

// PauseRequest is the body of POST /admin/consumers/:consumer/pause.
type PauseRequest struct {
	// Reason is shown on the console and in the consumer's status.
	Reason string `json:"reason"`
}

// PauseResponse answers a pause or a resume.
type PauseResponse struct {
	Consumer string `json:"consumer"`
	Paused   bool   `json:"paused"`
}

func (r *Runtime) handleConsumerPause(c echo.Context) error {
	var req PauseRequest
	if err := web.BindJSON(c, &req); err != nil {
		return err
	}
	name := c.Param("consumer")
	if err := r.Pause(c.Request().Context(), name, req.Reason); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, PauseResponse{Consumer: name, Paused: true})
}

func (r *Runtime) handleConsumerResume(c echo.Context) error {
	name := c.Param("consumer")
	if err := r.Resume(c.Request().Context(), name); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, PauseResponse{Consumer: name, Paused: false})
}
