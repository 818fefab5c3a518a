package projection

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
)

// Status is one projection as GET /api/v1/admin/projections shows it.
type Status struct {
	Name string `json:"name"`
	// LiveVersion answers queries (null before the first goes live);
	// PreviousVersion is kept for a rollback.
	LiveVersion     *int       `json:"live_version"`
	PreviousVersion *int       `json:"previous_version"`
	SwitchedAt      *time.Time `json:"switched_at"`
	// ThisBuild is the version this replica's code declares (null: a
	// projection this build does not have).
	ThisBuild *int `json:"this_build_version"`
	// Holder is the replica working on ThisBuild's version, and LastError
	// this replica's last error about it.
	Holder    string    `json:"holder,omitempty"`
	LastError string    `json:"last_error,omitempty"`
	Versions  []Version `json:"versions"`
}

// Lag is how far a version is behind: while building, the lake positions
// left to read; while following the stream, the events of its types the
// stream holds beyond what it applied at its last batch, and the age of
// its newest event when any are waiting (0 when caught up).
type Lag struct {
	Events  int64   `json:"events"`
	Seconds float64 `json:"seconds"`
}

// Status reads every projection's versions, the registered ones and any
// other the database knows.
func (r *Runtime) Status(ctx context.Context) ([]Status, error) {
	db := r.opt.Pool
	rows, err := db.Query(ctx, `SELECT name FROM projection.projections UNION SELECT name FROM projection.versions`)
	if err != nil {
		return nil, fmt.Errorf("projection: status: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("projection: status: %w", err)
	}
	build := map[string]int{}
	for _, p := range r.reg.All() {
		build[p.spec.Name] = p.spec.Version
		names = append(names, p.spec.Name)
	}
	sort.Strings(names)
	var out []Status
	for i, name := range names {
		if i > 0 && names[i-1] == name {
			continue
		}
		st := Status{Name: name, Versions: []Version{}}
		if v, ok := build[name]; ok {
			st.ThisBuild = &v
			if l := r.leases[name]; l != nil {
				st.Holder = l.Status().Holder
			}
		}
		r.mu.Lock()
		st.LastError = r.errs[name]
		r.mu.Unlock()
		ptr, err := loadPointer(ctx, db, name)
		if err != nil {
			return nil, err
		}
		st.LiveVersion, st.PreviousVersion, st.SwitchedAt = ptr.Live, ptr.Previous, ptr.SwitchedAt
		versions, err := listVersions(ctx, db, name)
		if err != nil {
			return nil, err
		}
		for _, v := range versions {
			v.Lag = lagOf(v)
			st.Versions = append(st.Versions, v)
		}
		out = append(out, st)
	}
	return out, nil
}

func lagOf(v Version) Lag {
	switch v.State {
	case Building:
		return Lag{Events: v.BuildTarget - v.LakePosition}
	case Failed:
		return Lag{}
	}
	var l Lag
	if v.Pending != nil {
		l.Events = *v.Pending
	}
	if l.Events > 0 && v.LastEventAt != nil {
		l.Seconds = time.Since(*v.LastEventAt).Seconds()
	}
	return l
}
