package replay

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/errs"
	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/web"
)

// The errors of the replay operations, as HTTP answers them.
var (
	ErrNotAllowed      = errs.New(errs.Conflict, "replay_not_allowed", "this consumer's replay policy does not allow that replay")
	ErrReplayRunning   = errs.New(errs.Conflict, "replay_running", "a replay of this consumer is running already")
	ErrUnknownConsumer = errs.New(errs.NotFound, "not_found", "no such consumer")
	ErrUnknownReplay   = errs.New(errs.NotFound, "not_found", "no such replay")
)

// Service records replay requests; the consumer runtime runs them on the
// replica that holds the consumer (Notify tells this replica's runtime at
// once; the others read replay.runs every second).
type Service struct {
	pool   *pgxpool.Pool
	subs   map[string]outbox.Subscription
	notify func(consumer string)
}

// NewService returns the service for the subscriptions this build runs;
// notify (optional) is told of each new run's consumer.
func NewService(pool *pgxpool.Pool, subs []outbox.Subscription, notify func(consumer string)) *Service {
	s := &Service{pool: pool, subs: map[string]outbox.Subscription{}, notify: notify}
	for _, sub := range subs {
		s.subs[sub.Consumer] = sub
	}
	return s
}

// Request is the body of POST /api/v1/admin/replays.
type Request struct {
	Consumer string `json:"consumer"`
	// Mode is "rebuild" or "dry_run".
	Mode string `json:"mode"`
	// From and To bound the range: a position of the lake (inclusive) or an
	// RFC 3339 time (from <= time < to); absent for the whole history.
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
}

// Start checks a request against the consumer's policy and records the
// run. Errors: validation_failed naming the bad fields, ErrUnknownConsumer,
// ErrNotAllowed (a never consumer, or a rebuild of an effectful one),
// ErrReplayRunning.
func (s *Service) Start(ctx context.Context, req Request) (Run, error) {
	bad := map[string]string{}
	req.Consumer = strings.TrimSpace(req.Consumer)
	if req.Consumer == "" {
		bad["consumer"] = "is required: a consumer's name, as GET /api/v1/status lists them"
	}
	mode := Mode(req.Mode)
	if mode != ModeRebuild && mode != ModeDryRun {
		bad["mode"] = `must be "rebuild" or "dry_run"`
	}
	var rng Range
	fromPos, fromTime, okFrom := parseBound(req.From)
	if !okFrom {
		bad["from"] = "must be a position of the lake (a whole number, 1 or more) or an RFC 3339 time"
	}
	toPos, toTime, okTo := parseBound(req.To)
	if !okTo {
		bad["to"] = "must be a position of the lake (a whole number, 1 or more) or an RFC 3339 time"
	}
	rng = Range{FromPosition: fromPos, ToPosition: toPos, FromTime: fromTime, ToTime: toTime}
	if okFrom && okTo {
		if fromPos > 0 && toPos > 0 && toPos < fromPos {
			bad["to"] = "must not be before from"
		}
		if !fromTime.IsZero() && !toTime.IsZero() && !toTime.After(fromTime) {
			bad["to"] = "must be after from"
		}
	}
	if len(bad) > 0 {
		return Run{}, errs.Validation(bad)
	}
	sub, ok := s.subs[req.Consumer]
	if !ok {
		return Run{}, ErrUnknownConsumer
	}
	switch {
	case sub.Replay == outbox.Never:
		return Run{}, ErrNotAllowed.WithMessage(fmt.Sprintf("%s is never replayed: %s", sub.Consumer, sub.NeverWhy))
	case sub.Replay == outbox.Effectful && mode == ModeRebuild:
		return Run{}, ErrNotAllowed.WithMessage(fmt.Sprintf("%s calls the outside world: it may be replayed only as a dry run, which records its calls instead of making them", sub.Consumer))
	case sub.Replay != outbox.Rebuildable && sub.Replay != outbox.Effectful:
		return Run{}, ErrNotAllowed.WithMessage(fmt.Sprintf("%s declares no replay policy", sub.Consumer))
	}
	run, err := Create(ctx, s.pool, sub.Consumer, mode, rng, req.From, req.To)
	if errors.Is(err, ErrRunning) {
		return Run{}, ErrReplayRunning
	}
	if err != nil {
		return Run{}, err
	}
	if s.notify != nil {
		s.notify(sub.Consumer)
	}
	return run, nil
}

// parseBound reads a from or to: "" (none), a position or a time.
func parseBound(v string) (int64, time.Time, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, time.Time{}, true
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return n, time.Time{}, n >= 1
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return 0, time.Time{}, false
	}
	return 0, t.UTC(), true
}

// Register adds the replay endpoints under g (/api/v1), behind the admin
// token.
func (s *Service) Register(g *echo.Group, adminToken string) {
	ag := g.Group("/admin", web.RequireAdmin(adminToken))
	web.Handle(ag, http.MethodPost, "/replays", web.Op{
		Summary:     "Start a replay of a consumer: a rebuild or a dry run",
		Description: "Rebuild: the live consumer pauses, its state is reset, its handler runs over the lake, then it resumes live. Dry run: its outside calls are recorded instead of made and its database changes rolled back.",
		Request:     Request{}, Response: Run{}, Status: http.StatusAccepted, Admin: true,
		Errors: []int{http.StatusBadRequest, http.StatusNotFound, http.StatusConflict},
	}, s.handleStart)
	web.Handle(ag, http.MethodGet, "/replays/:id", web.Op{
		Summary: "A replay's status and progress", Response: Run{}, Admin: true,
		Errors: []int{http.StatusBadRequest},
	}, s.handleGet)
	web.Handle(ag, http.MethodGet, "/replays/:id/effects", web.Op{
		Summary: "What a dry run would have done: the outside calls it recorded instead of making them", Response: effectsResponse{}, Admin: true,
		Query:  []web.Param{{Name: "limit", Type: "integer", Description: "1 to 10000, default 100"}},
		Errors: []int{http.StatusBadRequest},
	}, s.handleEffects)
}

type effectsResponse struct {
	Effects []Effect `json:"effects"`
}

func (s *Service) handleStart(c echo.Context) error {
	var req Request
	if err := web.BindJSON(c, &req); err != nil {
		return err
	}
	run, err := s.Start(c.Request().Context(), req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, run)
}

func replayID(c echo.Context) (string, error) {
	id := c.Param("id")
	if u, err := uuid.Parse(id); err != nil || len(id) != 36 || u == uuid.Nil {
		return "", errs.Validation(map[string]string{"id": "must be a replay id (a UUID)"})
	}
	return id, nil
}

func (s *Service) handleGet(c echo.Context) error {
	id, err := replayID(c)
	if err != nil {
		return err
	}
	run, err := Get(c.Request().Context(), s.pool, id)
	if errors.Is(err, ErrNoRun) {
		return ErrUnknownReplay
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, run)
}

func (s *Service) handleEffects(c echo.Context) error {
	id, err := replayID(c)
	limit := 100
	bad := map[string]string{}
	if err != nil {
		bad["id"] = "must be a replay id (a UUID)"
	}
	if raw := c.QueryParam("limit"); raw != "" {
		n, perr := strconv.Atoi(raw)
		if perr != nil || n < 1 || n > 10000 {
			bad["limit"] = "must be a whole number from 1 to 10000"
		}
		limit = n
	}
	if len(bad) > 0 {
		return errs.Validation(bad)
	}
	ctx := c.Request().Context()
	if _, err := Get(ctx, s.pool, id); errors.Is(err, ErrNoRun) {
		return ErrUnknownReplay
	} else if err != nil {
		return err
	}
	effects, err := Effects(ctx, s.pool, id, limit)
	if err != nil {
		return err
	}
	if effects == nil {
		effects = []Effect{}
	}
	return c.JSON(http.StatusOK, effectsResponse{Effects: effects})
}
