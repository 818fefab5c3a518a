package reporting_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cairn-dev/cairn/modules/reporting"
	"github.com/cairn-dev/cairn/outbox/projection"
	"github.com/cairn-dev/cairn/testenv"
)

// Every projection is order-tolerant and idempotent: the events of 2,000
// orders (and the catalogue, restocks and a ledger around them) delivered
// in random order, a fifth of them twice or more, in batches of random
// size (a batch may hold the same event twice), leave exactly the tables
// that delivery in order, once each, leaves.
func TestProjectionsAreOrderTolerantAndIdempotent(t *testing.T) {
	ctx := context.Background()
	db := testenv.MustEmptyDB(t)
	if _, err := db.Pool.Exec(ctx, `CREATE SCHEMA reporting`); err != nil {
		t.Fatal(err)
	}
	c, err := db.Pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	conn := c.Conn()
	events := history(7, 2000)
	t.Logf("%d events", len(events))
	rng := rand.New(rand.NewPCG(11, 13))
	for _, s := range reporting.Specs(reporting.Options{}) {
		var mine []projection.Event
		for _, e := range events {
			if slices.Contains(s.Events, e.Type) {
				mine = append(mine, e)
			}
		}
		// Version 1 in order, once each; version 2 shuffled, with
		// duplicates, in batches of 1 to 400.
		for _, v := range []int{1, 2} {
			if err := projection.CreateTables(ctx, conn, s, v); err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i < len(mine); i += 500 {
			if err := projection.ApplyEvents(ctx, conn, s, 1, mine[i:min(i+500, len(mine))]); err != nil {
				t.Fatal(err)
			}
		}
		messy := slices.Clone(mine)
		for _, e := range mine {
			for rng.IntN(5) == 0 {
				messy = append(messy, e)
			}
		}
		rng.Shuffle(len(messy), func(i, j int) { messy[i], messy[j] = messy[j], messy[i] })
		for i := 0; i < len(messy); {
			n := 1 + rng.IntN(400)
			if err := projection.ApplyEvents(ctx, conn, s, 2, messy[i:min(i+n, len(messy))]); err != nil {
				t.Fatal(err)
			}
			i += n
		}
		inOrder, shuffled := projection.TablesOf(s, 1), projection.TablesOf(s, 2)
		for _, table := range s.Tables {
			a, b := inOrder.Name(table), shuffled.Name(table)
			var rows, differ int
			err := db.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM `+a+`),
				(SELECT count(*) FROM ((TABLE `+a+` EXCEPT ALL TABLE `+b+`) UNION ALL (TABLE `+b+` EXCEPT ALL TABLE `+a+`)) d)`).Scan(&rows, &differ)
			if err != nil {
				t.Fatal(err)
			}
			if differ != 0 || rows == 0 {
				t.Errorf("%s: %d rows differ between in-order and shuffled delivery (%d rows in order)", table, differ, rows)
			} else {
				t.Logf("%s: %d rows, the same both ways (%d deliveries shuffled, %d events)", table, rows, len(messy), len(mine))
			}
		}
	}
}
