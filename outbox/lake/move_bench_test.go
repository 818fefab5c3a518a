package lake_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/modules/ledger"
	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/lake"
	"github.com/cairn-dev/cairn/testenv"
)

// BenchmarkMove measures the mover alone: ledger-shaped events (1,000
// accounts, request ids as correlation and causation) committed to the
// outbox, then moved in ranges of 300 rows (what 100 ms holds at 3,000
// events/s) and of 5,000 (a drain at 50,000/s), with acks for every row.
//
//	go test ./outbox/lake -run '^$' -bench BenchmarkMove -benchtime 1x
func BenchmarkMove(b *testing.B) {
	for _, size := range []int{300, 5000} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			db := testenv.MustDB(b)
			ctx := context.Background()
			m, err := lake.NewMover(db.Pool, lake.MoverOptions{})
			if err != nil {
				b.Fatal(err)
			}
			if err := lake.EnsurePartitions(ctx, db.Pool); err != nil {
				b.Fatal(err)
			}
			const total = 60_000
			var acks []lake.Ack
			for i := 0; i < total; i += 100 {
				mctx := outbox.WithMetadata(ctx, outbox.Metadata{CorrelationID: fmt.Sprintf("req%029d", i), CausationID: fmt.Sprintf("req%029d", i)})
				err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
					evs := make([]outbox.Event, 100)
					for j := range evs {
						acct := fmt.Sprintf("0193a7f0-0000-7000-8000-%012d", (i+j)%1000)
						evs[j] = ledger.EventDeposited.New(acct, ledger.Moved{AccountID: acct, Amount: 100, Currency: "EUR", Balance: int64(i + j), Version: int64(i + j), OccurredAt: time.Now()})
					}
					a, err := outbox.Append(mctx, tx, evs...)
					for k, x := range a {
						acks = append(acks, lake.Ack{ID: x.ID, Stream: outbox.PublicStream, Seq: uint64(i + k + 1)})
					}
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			rows, err := db.Pool.Query(ctx, `SELECT txid, seq FROM outbox.events ORDER BY txid, seq`)
			if err != nil {
				b.Fatal(err)
			}
			cursors, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (lake.Cursor, error) {
				var c lake.Cursor
				return c, r.Scan(&c.TxID, &c.Seq)
			})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := db.Pool.Exec(ctx, `VACUUM ANALYZE outbox.events`); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			start := time.Now()
			var from lake.Cursor
			for i := 0; i < total; i += size {
				j := min(i+size, total)
				n, err := m.MoveNow(ctx, lake.Range{From: from, To: cursors[j-1], Acks: acks[i:j]})
				if err != nil || n != int64(j-i) {
					b.Fatalf("move %d-%d: %d, %v", i, j, n, err)
				}
				from = cursors[j-1]
			}
			el := time.Since(start)
			b.ReportMetric(float64(total)/el.Seconds(), "rows/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}
