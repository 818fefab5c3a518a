package console

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/errs"
	"github.com/cairn-dev/cairn/outbox/saga"
)

// sagaStatuses are the statuses the list filters by.
var sagaStatuses = []string{string(saga.Running), string(saga.Stuck), string(saga.Completed), string(saga.Cancelled)}

type sagasPage struct {
	Type, Status string
	Types        []string
	Statuses     []string
	Sagas        []saga.Summary
	Limit        int
}

// sagaListLimit caps the instances a list shows.
const sagaListLimit = 200

// handleSagas lists saga instances, most recently changed first, by type
// and status; stuck ones are what an operator comes for.
func (con *Console) handleSagas(c echo.Context) error {
	p := sagasPage{Type: c.QueryParam("type"), Status: c.QueryParam("status"), Types: con.Sagas.Types(),
		Statuses: sagaStatuses, Limit: sagaListLimit}
	var bad []string
	if p.Type != "" && !slices.Contains(p.Types, p.Type) {
		bad = append(bad, "no saga type "+strconv.Quote(p.Type))
	}
	if p.Status != "" && !slices.Contains(sagaStatuses, p.Status) {
		bad = append(bad, "status must be running, stuck, completed or cancelled")
	}
	if len(bad) > 0 {
		return con.renderFlash(c, http.StatusBadRequest, "sagas", strings.Join(bad, "; "), p)
	}
	list, err := saga.List(c.Request().Context(), con.DB, p.Type, saga.Status(p.Status), sagaListLimit)
	if err != nil {
		return err
	}
	p.Sagas = list
	return con.render(c, http.StatusOK, "sagas", p)
}

type sagaPage struct {
	V    saga.View
	Data string // the instance's data, indented
}

// Final reports whether nothing more can be done to the instance.
func (p sagaPage) Final() bool { return p.V.Status == saga.Completed || p.V.Status == saga.Cancelled }

// handleSaga shows one instance whole: its data, its history (each step,
// what caused it, what it sent) and its timers, with retry and cancel.
func (con *Console) handleSaga(c echo.Context) error {
	return con.renderSaga(c, http.StatusOK, "")
}

func (con *Console) renderSaga(c echo.Context, status int, flash string) error {
	v, err := saga.Get(c.Request().Context(), con.DB, c.Param("type"), c.Param("id"))
	if errors.Is(err, saga.ErrNotFound) {
		return con.renderFlash(c, http.StatusNotFound, "saga", "No saga instance "+c.Param("type")+" "+c.Param("id")+".", nil)
	}
	if err != nil {
		return err
	}
	return con.renderFlash(c, status, "saga", flash, sagaPage{V: v, Data: indent(json.RawMessage(v.Data))})
}

// handleSagaAction retries (a stuck instance, as its saga defines) or
// cancels an instance: what POST /api/v1/admin/sagas/:type/:id/retry and
// /cancel do, from a form. A refusal (not stuck, final already) is shown
// on the instance's page with 409.
func (con *Console) handleSagaAction(action string) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx, typ, id := c.Request().Context(), c.Param("type"), c.Param("id")
		var err error
		if action == "retry" {
			err = con.Sagas.Retry(ctx, con.DB, typ, id)
		} else {
			err = con.Sagas.Cancel(ctx, con.DB, typ, id)
		}
		switch {
		case err == nil:
			done := map[string]string{"retry": "Retried.", "cancel": "Cancelled: nothing runs for it any more; what it did stays done."}[action]
			return con.renderSaga(c, http.StatusOK, done)
		case errs.KindOf(err) == errs.Conflict:
			return con.renderSaga(c, http.StatusConflict, "Refused: "+err.Error())
		case errors.Is(err, saga.ErrNotFound):
			return con.renderSaga(c, http.StatusNotFound, "")
		}
		return err
	}
}
