package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/outbox/projection"
)

// projectionsPage is every projection's versions, as GET
// /api/v1/admin/projections answers them.
type projectionsPage struct {
	At          time.Time
	Off         bool // no projection runtime
	Projections []projectionView
}

type projectionView struct {
	projection.Status
	Versions []versionView
}

type versionView struct {
	projection.Version
	// Role is "live", "previous" or "" as the pointer says; ThisBuild is
	// whether this replica's code declares it.
	Role      string
	ThisBuild bool
	// Verified is the last verification, summed up: "passed", "failed
	// (2 of 3 checks differ)", "skipped: …"; "" for none yet.
	Verified   string
	VerifiedOK bool
	VerifiedAt time.Time
}

// handleProjections shows each projection's live, previous and this
// build's version and every version's state and lag: read only; rollback
// and rebuild are commands.
func (con *Console) handleProjections(c echo.Context) error {
	p := projectionsPage{At: time.Now().UTC(), Off: con.Projections == nil}
	if p.Off {
		return con.render(c, http.StatusOK, "projections", p)
	}
	st, err := con.Projections.Status(c.Request().Context())
	if err != nil {
		return err
	}
	for _, s := range st {
		pv := projectionView{Status: s}
		for _, v := range s.Versions {
			vv := versionView{Version: v, ThisBuild: s.ThisBuild != nil && *s.ThisBuild == v.Version}
			switch {
			case s.LiveVersion != nil && *s.LiveVersion == v.Version:
				vv.Role = "live"
			case s.PreviousVersion != nil && *s.PreviousVersion == v.Version:
				vv.Role = "previous"
			}
			vv.Verified, vv.VerifiedOK, vv.VerifiedAt = verification(v.Verification)
			pv.Versions = append(pv.Versions, vv)
		}
		p.Projections = append(p.Projections, pv)
	}
	return con.render(c, http.StatusOK, "projections", p)
}

// verification sums up a version's last verification report.
func verification(raw json.RawMessage) (string, bool, time.Time) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", false, time.Time{}
	}
	var r projection.Report
	if err := json.Unmarshal(raw, &r); err != nil {
		return "unreadable report", false, time.Time{}
	}
	switch {
	case r.Skipped != "":
		return "skipped: " + r.Skipped, r.OK, r.At
	case r.OK:
		return fmt.Sprintf("passed (%d check%s)", len(r.Checks), plural(len(r.Checks))), true, r.At
	}
	bad := 0
	for _, ch := range r.Checks {
		if !ch.OK {
			bad++
		}
	}
	return fmt.Sprintf("failed (%d of %d check%s differ)", bad, len(r.Checks), plural(len(r.Checks))), false, r.At
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
