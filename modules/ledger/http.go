package ledger

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/errs"
	"github.com/cairn-dev/cairn/web"
)

func (m *Module) routes(g *echo.Group) {
	idempotencyKey := []web.Param{{Name: "Idempotency-Key", Description: "Replays the first answer to a retried request with the same key and body (24 h by default); " +
		"the replay carries Idempotent-Replayed: true. The same key with another body is 422 idempotency_key_reused."}}
	web.Handle(g, http.MethodPost, "/accounts", web.Op{
		Summary: "Open an account", Request: openRequest{}, Response: accountResponse{}, Status: http.StatusCreated,
	}, m.handleAccountOpen)
	web.Handle(g, http.MethodGet, "/accounts/:id", web.Op{
		Summary: "Read an account, now or as of a moment (folded from its events)", Response: accountResponse{},
		Query:  []web.Param{{Name: "as_of", Format: "date-time", Description: "RFC 3339 time: the balance and version then"}},
		Errors: []int{http.StatusBadRequest},
	}, m.handleAccountGet)
	web.Handle(g, http.MethodPost, "/accounts/:id/deposits", web.Op{
		Summary: "Pay money into an account", Request: moveRequest{}, Response: Movement{}, Status: http.StatusCreated,
		Header: idempotencyKey, Errors: []int{http.StatusUnprocessableEntity},
	}, m.handleMove(m.Deposit))
	web.Handle(g, http.MethodPost, "/accounts/:id/withdrawals", web.Op{
		Summary: "Take money out of an account", Request: moveRequest{}, Response: Movement{}, Status: http.StatusCreated,
		Header: idempotencyKey, Errors: []int{http.StatusUnprocessableEntity},
	}, m.handleMove(m.Withdraw))
	web.Handle(g, http.MethodGet, "/accounts/:id/events", web.Op{
		Summary: "The account's history, oldest first, a page at a time", Response: historyResponse{},
		Query: []web.Param{
			{Name: "after_version", Type: "integer", Description: "only entries after this version"},
			{Name: "limit", Type: "integer", Description: "1 to 1000, default 100"},
		},
		Errors: []int{http.StatusBadRequest},
	}, m.handleAccountEvents)
}

type openRequest struct {
	Owner    *string `json:"owner"`
	Currency *string `json:"currency"`
}

type accountResponse struct {
	ID       string     `json:"id"`
	Owner    string     `json:"owner"`
	Currency string     `json:"currency"`
	Balance  int64      `json:"balance"`
	Version  int64      `json:"version"`
	OpenedAt time.Time  `json:"opened_at"`
	AsOf     *time.Time `json:"as_of,omitempty"`
}

func toAccountResponse(a Account) accountResponse {
	return accountResponse{ID: a.ID, Owner: a.Owner, Currency: a.Currency, Balance: a.Balance, Version: a.Version, OpenedAt: a.OpenedAt}
}

func (m *Module) handleAccountOpen(c echo.Context) error {
	var req openRequest
	if err := web.BindJSON(c, &req); err != nil {
		return err
	}
	missing := map[string]string{}
	if req.Owner == nil {
		missing["owner"] = "is required"
	}
	if req.Currency == nil {
		missing["currency"] = "is required"
	}
	if len(missing) > 0 {
		return errs.Validation(missing)
	}
	a, err := m.Open(c.Request().Context(), *req.Owner, *req.Currency)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, toAccountResponse(a))
}

type moveRequest struct {
	Amount *int64 `json:"amount"`
}

type moveFunc func(ctx context.Context, accountID string, amount int64, key string) (Movement, bool, error)

func (m *Module) handleMove(move moveFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		var req moveRequest
		if err := web.BindJSON(c, &req); err != nil {
			return err
		}
		if req.Amount == nil {
			return errs.Validation(map[string]string{"amount": "is required"})
		}
		mv, replayed, err := move(c.Request().Context(), c.Param("id"), *req.Amount, c.Request().Header.Get("Idempotency-Key"))
		if err != nil {
			return err
		}
		if replayed {
			c.Response().Header().Set("Idempotent-Replayed", "true")
		}
		return c.JSON(http.StatusCreated, mv)
	}
}

func (m *Module) handleAccountGet(c echo.Context) error {
	ctx := c.Request().Context()
	raw := c.QueryParam("as_of")
	if raw == "" {
		a, err := m.Account(ctx, c.Param("id"))
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, toAccountResponse(a))
	}
	t, err := time.Parse(time.RFC3339Nano, raw)
	if err != nil {
		return errs.Validation(map[string]string{"as_of": "must be an RFC 3339 time such as 2026-11-23T10:00:00Z"})
	}
	a, err := m.AccountAsOf(ctx, c.Param("id"), t)
	if err != nil {
		return err
	}
	resp := toAccountResponse(a)
	resp.AsOf = &t
	return c.JSON(http.StatusOK, resp)
}

type entryResponse struct {
	Version    int64     `json:"version"`
	Type       string    `json:"type"`
	Amount     int64     `json:"amount"`
	Balance    int64     `json:"balance"`
	OccurredAt time.Time `json:"occurred_at"`
	EventID    string    `json:"event_id"`
}

type historyResponse struct {
	Events           []entryResponse `json:"events"`
	NextAfterVersion *int64          `json:"next_after_version"`
}

func (m *Module) handleAccountEvents(c echo.Context) error {
	after, limit := int64(-1), 100
	fields := map[string]string{}
	if raw := c.QueryParam("after_version"); raw != "" {
		v, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || v < 0 {
			fields["after_version"] = "must be a whole number >= 0"
		}
		after = v
	}
	if raw := c.QueryParam("limit"); raw != "" {
		v, err := strconv.Atoi(raw)
		if err != nil || v < 1 || v > 1000 {
			fields["limit"] = "must be a whole number from 1 to 1000"
		}
		limit = v
	}
	if len(fields) > 0 {
		return errs.Validation(fields)
	}
	entries, err := m.History(c.Request().Context(), c.Param("id"), after, limit)
	if err != nil {
		return err
	}
	resp := historyResponse{Events: make([]entryResponse, 0, len(entries))}
	for _, e := range entries {
		resp.Events = append(resp.Events, entryResponse(e))
	}
	if len(entries) == limit {
		next := entries[len(entries)-1].Version
		resp.NextAfterVersion = &next
	}
	return c.JSON(http.StatusOK, resp)
}
