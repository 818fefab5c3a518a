package ledger_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/modules/ledger"
	"github.com/cairn-dev/cairn/testenv"
)

// The sweep stays cheap however many keys there are: each batch finds its
// keys through the index on created_at and deletes them by primary key,
// with the generic plan Cairn's pool forces, and scans no whole table.
func TestSweepIsIndexed(t *testing.T) {
	db := testenv.MustDB(t)
	ctx := context.Background()
	_, err := db.Pool.Exec(ctx, `INSERT INTO ledger.idempotency_keys (key, request_hash, status, response, created_at)
		SELECT 'k-' || i, '\x00'::bytea, 201, '{}'::jsonb, now() - interval '48 hours' + i * interval '1 second'
		FROM generate_series(1, 100000) i`)
	if err != nil {
		t.Fatal(err)
	}
	c, err := db.Pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	for _, sql := range []string{`ANALYZE ledger.idempotency_keys`, `SET plan_cache_mode = force_generic_plan`,
		`PREPARE sweep(interval, int) AS ` + ledger.SweepSQL} {
		if _, err := c.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	var plan []string
	// EXPLAIN takes no bind parameters: the values go in as literals.
	rows, err := c.Query(ctx, fmt.Sprintf(`EXPLAIN EXECUTE sweep('%d seconds', %d)`, int((24*time.Hour).Seconds()), ledger.SweepBatch))
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, line)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	text := strings.Join(plan, "\n")
	if strings.Contains(text, "Seq Scan") || !strings.Contains(text, "idempotency_keys_created_at") || !strings.Contains(text, "idempotency_keys_pkey") {
		t.Fatalf("the sweep is not an indexed batch:\n%s", text)
	}
}
