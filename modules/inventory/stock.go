package inventory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/outbox"
)

// reserve carries out inventory.reserve_stock.v1: all lines or none, under
// the row locks of the items (taken in SKU order, so two reservations never
// deadlock). A reservation id seen before (reserved, refused, released
// early) changes nothing.
func (m *Module) reserve(ctx context.Context, tx pgx.Tx, e outbox.Received[ReserveStock]) error {
	id := e.Data.ReservationID
	lines, err := checkCommand(e.Event.Type, e.ID, id, e.Data.Lines, true)
	if err != nil {
		return err
	}
	status, _, stock, err := lock(ctx, tx, id, lines)
	if err != nil || status != "" {
		return err
	}
	var short []Shortage
	for _, l := range lines {
		if avail := stock[l.SKU]; avail < l.Quantity {
			short = append(short, Shortage{SKU: l.SKU, Quantity: l.Quantity, Available: max(avail, 0)})
		}
	}
	b := &pgx.Batch{}
	status, ev := "reserved", EventStockReserved.New(id, StockLines{ReservationID: id, Lines: lines})
	if len(short) > 0 {
		status, ev = "unavailable", EventStockUnavailable.New(id, StockUnavailable{ReservationID: id, Short: short})
	} else {
		queueMoves(b, `reserved = i.reserved + x.q`, lines)
	}
	raw, _ := json.Marshal(lines)
	b.Queue(`INSERT INTO inventory.reservations (id, lines, status) VALUES ($1, $2, $3)`, id, raw, status)
	if _, err := outbox.Queue(ctx, b, ev); err != nil {
		return err
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("inventory: reserve %s: %w", id, err)
	}
	return nil
}

// release carries out inventory.release_stock.v1: what the reservation
// holds goes back (reserved units, or on hand for committed ones), and the
// answer is inventory.stock_released.v1, again for a reservation released
// before (so a resent command is answered). A reservation never reserved
// is closed, so a reserve_stock that arrives later reserves nothing.
func (m *Module) release(ctx context.Context, tx pgx.Tx, e outbox.Received[ReservationRef]) error {
	id := e.Data.ReservationID
	if _, err := checkCommand(e.Event.Type, e.ID, id, nil, false); err != nil {
		return err
	}
	status, lines, _, err := lock(ctx, tx, id, nil)
	if err != nil {
		return err
	}
	b := &pgx.Batch{}
	switch status {
	case "":
		b.Queue(`INSERT INTO inventory.reservations (id, lines, status) VALUES ($1, '[]', 'released')`, id)
		lines = []Line{}
	case "reserved", "committed":
		if status == "reserved" {
			queueMoves(b, `reserved = i.reserved - x.q`, lines)
		} else {
			queueMoves(b, `on_hand = i.on_hand + x.q`, lines)
		}
		b.Queue(`UPDATE inventory.reservations SET status = 'released', updated_at = clock_timestamp() WHERE id = $1`, id)
	case "unavailable":
		lines = []Line{} // it never held anything
	}
	if _, err := outbox.Queue(ctx, b, EventStockReleased.New(id, StockLines{ReservationID: id, Lines: lines})); err != nil {
		return err
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("inventory: release %s: %w", id, err)
	}
	return nil
}

// commit carries out inventory.commit_stock.v1: a reservation's units
// leave the warehouse. Anything but a reservation that holds units
// (released already, say, by a cancellation that came first) is left as
// it is.
func (m *Module) commit(ctx context.Context, tx pgx.Tx, e outbox.Received[ReservationRef]) error {
	id := e.Data.ReservationID
	if _, err := checkCommand(e.Event.Type, e.ID, id, nil, false); err != nil {
		return err
	}
	status, lines, _, err := lock(ctx, tx, id, nil)
	if err != nil || status != "reserved" {
		return err
	}
	b := &pgx.Batch{}
	queueMoves(b, `on_hand = i.on_hand - x.q, reserved = i.reserved - x.q`, lines)
	b.Queue(`UPDATE inventory.reservations SET status = 'committed', updated_at = clock_timestamp() WHERE id = $1`, id)
	if _, err := outbox.Queue(ctx, b, EventStockCommitted.New(id, StockLines{ReservationID: id, Lines: lines})); err != nil {
		return err
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("inventory: commit %s: %w", id, err)
	}
	return nil
}

// checkCommand checks a command's reservation id and, with needLines, its
// lines, which it returns merged per SKU and sorted; a malformed command
// can never succeed and is parked (outbox.Permanent).
func checkCommand(typ, eventID, id string, lines []Line, needLines bool) ([]Line, error) {
	if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
		return nil, outbox.Permanent(fmt.Errorf("inventory: %s %s: reservation id %q is not a UUID", typ, eventID, id))
	}
	if !needLines {
		return nil, nil
	}
	merged := map[string]int64{}
	for _, l := range lines {
		if !skuPattern.MatchString(l.SKU) || l.Quantity < 1 || l.Quantity > maxQuantity {
			return nil, outbox.Permanent(fmt.Errorf("inventory: %s %s: line %+v is not a SKU and a quantity from 1 to 10^9", typ, eventID, l))
		}
		merged[l.SKU] += l.Quantity
	}
	if len(merged) == 0 {
		return nil, outbox.Permanent(fmt.Errorf("inventory: %s %s has no lines", typ, eventID))
	}
	out := make([]Line, 0, len(merged))
	for sku, q := range merged {
		out = append(out, Line{SKU: sku, Quantity: q})
	}
	slices.SortFunc(out, func(a, b Line) int {
		if a.SKU < b.SKU {
			return -1
		}
		if a.SKU > b.SKU {
			return 1
		}
		return 0
	})
	return out, nil
}

// lock locks, in one round trip, a reservation's row and the rows of its
// items, in SKU order (so that two reservations never deadlock): those of
// lines for a reserve, those the reservation holds (reserved or committed)
// otherwise. It returns the reservation's status ("" when it has no row)
// and lines, and what is available of each item locked (an unknown SKU is
// absent).
func lock(ctx context.Context, tx pgx.Tx, id string, lines []Line) (status string, held []Line, avail map[string]int64, err error) {
	b := &pgx.Batch{}
	b.Queue(`SELECT status, lines FROM inventory.reservations WHERE id = $1 FOR UPDATE`, id).QueryRow(func(row pgx.Row) error {
		var raw []byte
		err := row.Scan(&status, &raw)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		return json.Unmarshal(raw, &held)
	})
	avail = map[string]int64{}
	collect := func(rows pgx.Rows) error {
		var sku string
		var n int64
		_, err := pgx.ForEachRow(rows, []any{&sku, &n}, func() error { avail[sku] = n; return nil })
		return err
	}
	if lines != nil {
		skus := make([]string, len(lines))
		for i, l := range lines {
			skus[i] = l.SKU
		}
		b.Queue(`SELECT sku, on_hand - reserved FROM inventory.items WHERE sku = ANY($1) ORDER BY sku FOR UPDATE`, skus).Query(collect)
	} else {
		b.Queue(`SELECT sku, on_hand - reserved FROM inventory.items WHERE sku IN (
			SELECT l->>'sku' FROM inventory.reservations r, jsonb_array_elements(r.lines) l
			 WHERE r.id = $1 AND r.status IN ('reserved', 'committed')) ORDER BY sku FOR UPDATE`, id).Query(collect)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return "", nil, nil, fmt.Errorf("inventory: lock reservation %s: %w", id, err)
	}
	return status, held, avail, nil
}

// queueMoves queues one update of every line's item: set is the SET list
// over i (the item) and x.q (the line's quantity).
func queueMoves(b *pgx.Batch, set string, lines []Line) {
	skus := make([]string, len(lines))
	qs := make([]int64, len(lines))
	for i, l := range lines {
		skus[i], qs[i] = l.SKU, l.Quantity
	}
	b.Queue(`UPDATE inventory.items i SET `+set+`, updated_at = clock_timestamp()
		FROM unnest($1::text[], $2::bigint[]) AS x(sku, q) WHERE i.sku = x.sku`, skus, qs)
}
