package console

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/outbox/lake"
	"github.com/cairn-dev/cairn/outbox/lake/export"
	"github.com/cairn-dev/cairn/telemetry"
)

// lakePage is the lake's mover, its head and its exporter.
type lakePage struct {
	S telemetry.Snapshot
	// On is false with CAIRN_LAKE=off: nothing moves into the lake.
	On    bool
	Mover lake.MoverMetrics
	// Position is the lake's last position: positions are gap-free from
	// 1, so it is also how many events the lake holds. HeadErr is why it
	// could not be read.
	Position   int64
	RecordedAt time.Time
	HeadErr    string
	// Export is nil with exporting off (CAIRN_LAKE_EXPORT_INTERVAL=0).
	Export *exportStatus
}

type exportStatus struct {
	// Manifest is where the manifest is, without credentials or query.
	Manifest string
	// Through is the last position the manifest lists, UpdatedAt when it
	// was written and Writer by whom; ManifestErr is why it could not be
	// read.
	Through     int64
	UpdatedAt   time.Time
	Writer      string
	Files       int
	ManifestErr string
}

// headSQL reads the lake's last position and when it was last moved
// into (or bumped by an export).
const headSQL = `SELECT position, recorded_at FROM lake.head`

func (con *Console) handleLake(c echo.Context) error {
	ctx := c.Request().Context()
	p := lakePage{S: con.Metrics.Snapshot(ctx), On: con.Lake != nil}
	if p.On {
		p.Mover = con.Lake.Metrics()
		if err := con.DB.QueryRow(ctx, headSQL).Scan(&p.Position, &p.RecordedAt); err != nil {
			p.HeadErr = fmt.Sprintf("read lake.head: %v", err)
		}
	}
	if con.Exporter != nil {
		p.Export = con.exportStatus(ctx)
	}
	return con.render(c, http.StatusOK, "lake", p)
}

// exportStatus reads the manifest the exporter keeps at its target.
func (con *Console) exportStatus(ctx context.Context) *exportStatus {
	st := &exportStatus{Manifest: withoutSecrets(con.ExportTarget) + "/" + export.ManifestKey}
	m, err := export.ReadManifest(ctx, con.Exporter.Bucket())
	if err != nil {
		st.ManifestErr = err.Error()
		return st
	}
	st.Through, st.UpdatedAt, st.Writer = m.Through, m.UpdatedAt, m.Writer.Holder
	for _, p := range m.Periods {
		st.Files += len(p.Files)
	}
	return st
}

// withoutSecrets strips a target URL of its user information and query,
// where an s3 URL can carry keys.
func withoutSecrets(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(an unreadable URL)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return strings.TrimRight(u.String(), "/")
}
