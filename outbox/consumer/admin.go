package consumer

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/errs"
	"github.com/cairn-dev/cairn/web"
)

var errBadDeadLetID = errs.Validation(map[string]string{"id": "is not a valid dead letter id"})

// RegisterAdmin adds the dead-letter endpoints under g (/api/v1/admin):
// list, retry and discard. They require the admin token; with none
// configured they answer 403 admin_disabled.
func (r *Runtime) RegisterAdmin(g *echo.Group, token string) {
	g.Use(web.RequireAdmin(token))
	web.Handle(g, http.MethodGet, "/dead-letters", web.Op{
		Summary: "List dead letters, oldest first", Response: deadLetterList{}, Admin: true,
		Query: []web.Param{
			{Name: "consumer", Description: "only this consumer's"},
			{Name: "limit", Type: "integer", Description: "1 to 1000, default 100"},
		},
		Errors: []int{http.StatusBadRequest},
	}, r.handleDeadLetterList)
	web.Handle(g, http.MethodPost, "/dead-letters/:id/retry", web.Op{
		Summary: "Run the dead letter's handler again now; on success it is removed", Response: retryResponse{}, Admin: true,
		Errors: []int{http.StatusBadRequest, http.StatusConflict},
	}, r.handleDeadLetterRetry)
	web.Handle(g, http.MethodDelete, "/dead-letters/:id", web.Op{
		Summary: "Discard a dead letter for good", Admin: true, Errors: []int{http.StatusBadRequest},
	}, r.handleDeadLetterDiscard)
	web.Handle(g, http.MethodPost, "/consumers/:consumer/pause", web.Op{
		Summary: "Pause a consumer on every replica until it is resumed", Request: PauseRequest{}, Response: PauseResponse{}, Admin: true,
	}, r.handleConsumerPause)
	web.Handle(g, http.MethodPost, "/consumers/:consumer/resume", web.Op{
		Summary: "Resume a paused consumer", Response: PauseResponse{}, Admin: true,
	}, r.handleConsumerResume)
}

type deadLetterList struct {
	DeadLetters []DeadLetter `json:"dead_letters"`
}

func (r *Runtime) handleDeadLetterList(c echo.Context) error {
	limit := 100
	if raw := c.QueryParam("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > 1000 {
			return errs.Validation(map[string]string{"limit": "must be a whole number from 1 to 1000"})
		}
		limit = n
	}
	list, err := r.DeadLetters(c.Request().Context(), c.QueryParam("consumer"), limit)
	if err != nil {
		return err
	}
	if list == nil {
		list = []DeadLetter{}
	}
	return c.JSON(http.StatusOK, deadLetterList{DeadLetters: list})
}

type retryResponse struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

func (r *Runtime) handleDeadLetterRetry(c echo.Context) error {
	id := c.Param("id")
	if !validUUID(id) {
		return errBadDeadLetID
	}
	if err := r.Retry(c.Request().Context(), id); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, retryResponse{ID: id, Status: "delivered"})
}

func (r *Runtime) handleDeadLetterDiscard(c echo.Context) error {
	id := c.Param("id")
	if !validUUID(id) {
		return errBadDeadLetID
	}
	if err := r.Discard(c.Request().Context(), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
