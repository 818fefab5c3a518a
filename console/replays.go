package console

import (
	"errors"
	"net/http"
	"strings"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/outbox/replay"
)

const (
	// replayListLimit caps the runs the Replays page lists.
	replayListLimit = 100
	// replayEffectsLimit is how many of a dry run's effects its page
	// shows, as GET /api/v1/admin/replays/:id/effects answers by default.
	replayEffectsLimit = 100
)

type replaysPage struct {
	Runs  []replay.Run
	Limit int
}

// handleReplays lists the replays (rebuilds, dry runs, seedings), the
// most recently requested first: read only; a replay is started with
// `cairn replay` or POST /api/v1/admin/replays.
func (con *Console) handleReplays(c echo.Context) error {
	runs, err := replay.List(c.Request().Context(), con.DB, replayListLimit)
	if err != nil {
		return err
	}
	return con.render(c, http.StatusOK, "replays", replaysPage{Runs: runs, Limit: replayListLimit})
}

type replayPage struct {
	Run     replay.Run
	Effects []effectView
	// Limit is how many effects are shown at most.
	Limit int
}

type effectView struct {
	replay.Effect
	Detail string // indented
}

// More reports whether the run recorded more effects than are shown.
func (p replayPage) More() bool { return p.Run.Effects > int64(len(p.Effects)) }

// handleReplay shows one run: its range, progress, handoff and error, and
// a dry run's first recorded effects.
func (con *Console) handleReplay(c echo.Context) error {
	ctx, id := c.Request().Context(), c.Param("id")
	if u, err := uuid.Parse(id); err != nil || len(id) != 36 || u == uuid.Nil {
		return con.renderFlash(c, http.StatusNotFound, "replay", "No replay "+id+": a replay's id is a UUID.", nil)
	}
	run, err := replay.Get(ctx, con.DB, strings.ToLower(id))
	if errors.Is(err, replay.ErrNoRun) {
		return con.renderFlash(c, http.StatusNotFound, "replay", "No replay "+id+".", nil)
	}
	if err != nil {
		return err
	}
	p := replayPage{Run: run, Limit: replayEffectsLimit}
	if run.Mode == replay.ModeDryRun {
		effects, err := replay.Effects(ctx, con.DB, run.ID, replayEffectsLimit)
		if err != nil {
			return err
		}
		for _, e := range effects {
			p.Effects = append(p.Effects, effectView{Effect: e, Detail: indent(e.Detail)})
		}
	}
	return con.render(c, http.StatusOK, "replay", p)
}

// replayRange says a run's range as asked: positions or times, "" for the
// start or the end of history.
func replayRange(from, to string) string {
	if from == "" && to == "" {
		return "all history"
	}
	s := "from the start"
	if from != "" {
		s = "from " + from
	}
	if to != "" {
		return s + " to " + to
	}
	return s + " to the head"
}

func init() { funcs["replayRange"] = replayRange }
