package app

import (
	"context"
	"fmt"
	"time"

	"github.com/cairn-dev/cairn/outbox/lake/export"
	"github.com/cairn-dev/cairn/outbox/lookup"
)

// openExporter opens the lake's Parquet export target, unless
// CAIRN_LAKE_EXPORT_INTERVAL is 0. It reads and leases on pools of its own:
// a long export never takes the API's connections, and its lease renewals
// never wait behind the export's query.
func (a *App) openExporter(ctx context.Context) error {
	if a.cfg.LakeExportInterval <= 0 {
		return nil
	}
	pool, err := a.infra.sidePool(ctx, "lake export", 2, map[string]string{"jit": "off"})
	if err != nil {
		return err
	}
	if a.exportLeases, err = a.infra.sidePool(ctx, "lake export lease", 2, nil); err != nil {
		return err
	}
	a.exporter, err = export.Open(ctx, pool, export.Options{
		URL: a.cfg.LakeExportTarget(), Interval: a.cfg.LakeExportInterval, Period: a.cfg.LakeExportPeriod,
		Holder: holder(), Logger: a.log,
	})
	if err != nil {
		return fmt.Errorf("CAIRN_LAKE_EXPORT_URL: %w", err)
	}
	return nil
}

// Exporter is the app's lake exporter, nil when exporting is off.
func (a *App) Exporter() *export.Exporter { return a.exporter }

// exported is when the exporter last succeeded here, for /metrics; nil
// when exporting is off.
func (a *App) exported() func() time.Time {
	if a.exporter == nil {
		return nil
	}
	return a.exporter.LastSuccess
}

// finder is what the console looks events up with: the lake and the
// outbox; with the lake off, the outbox and the newest messages of the
// streams.
func (a *App) finder() lookup.Finder {
	if a.cfg.LakeOn() {
		return lookup.Lake{Lake: a.lake, Pool: a.infra.pool}
	}
	return lookup.Recent{Pool: a.infra.pool, JS: a.infra.js}
}
