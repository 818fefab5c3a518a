package lake_test

import (
	"context"
	"strings"
	"testing"
)

// The lake refuses to change or lose a row, whoever asks (the test's
// connection is a superuser's, whom privileges do not bind): UPDATE and
// DELETE on the partitioned table, on a partition directly, and on the id
// table, and TRUNCATE of each. Inserting still works.
func TestLakeRefusesUpdatesAndDeletes(t *testing.T) {
	a := newLakeApp(t)
	a.signUpAndActivate(1)
	a.settle()
	var partition string
	if err := a.DB.Pool.QueryRow(context.Background(),
		`SELECT tableoid::regclass::text FROM lake.events LIMIT 1`).Scan(&partition); err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{
		`UPDATE lake.events SET data = '{}'`,
		`UPDATE lake.events SET type = 'x.y.v1' WHERE position = 1`,
		`DELETE FROM lake.events WHERE position = 1`,
		`DELETE FROM lake.events`,
		`TRUNCATE lake.events`,
		`UPDATE ` + partition + ` SET data = '{}'`,
		`DELETE FROM ` + partition,
		`TRUNCATE ` + partition,
		`UPDATE lake.ids SET position = 0`,
		`DELETE FROM lake.ids`,
		`TRUNCATE lake.ids`,
	} {
		_, err := a.DB.Pool.Exec(context.Background(), sql)
		if err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v, want it refused", sql, err)
		}
	}
	if n := a.Count(`SELECT count(*) FROM lake.events`); n != 4 {
		t.Errorf("%d events left, want 4", n)
	}
}
