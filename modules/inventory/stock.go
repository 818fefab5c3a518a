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
		if avail := stock[l.SKU].available(); avail < l.Quantity {
			short = append(short, Shortage{SKU: l.SKU, Quantity: l.Quantity, Available: max(avail, 0)})
		}
	}
	b := &pgx.Batch{}
	status, ev := "reserved", EventStockReserved.New(id, StockLines{ReservationID: id, Lines: lines})
	if len(short) > 0 {
		status, ev = "unavailable", EventStockUnavailable.New(id, StockUnavailable{ReservationID: id, Short: short})
	} else if err := queueMoves(ctx, b, id, "reserved", lines, stock, 0, 1); err != nil {
		return err
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
	status, lines, stock, err := lock(ctx, tx, id, nil)
	if err != nil {
		return err
	}
	b := &pgx.Batch{}
	switch status {
	case "":
		b.Queue(`INSERT INTO inventory.reservations (id, lines, status) VALUES ($1, '[]', 'released')`, id)
		lines = []Line{}
	case "reserved", "committed":
		onHand, reserved := int64(0), int64(-1)
		if status == "committed" {
			onHand, reserved = 1, 0
		}
		if err := queueMoves(ctx, b, id, "released", lines, stock, onHand, reserved); err != nil {
			return err
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
	status, lines, stock, err := lock(ctx, tx, id, nil)
	if err != nil || status != "reserved" {
		return err
	}
	b := &pgx.Batch{}
	if err := queueMoves(ctx, b, id, "committed", lines, stock, -1, -1); err != nil {
		return err
	}
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

// level is an item's units as locked.
type level struct{ onHand, reserved int64 }

func (l level) available() int64 { return l.onHand - l.reserved }

// lock locks, in one round trip, a reservation's row and the rows of its
// items, in SKU order (so that two reservations never deadlock): those of
// lines for a reserve, those the reservation holds (reserved or committed)
// otherwise. It returns the reservation's status ("" when it has no row)
// and lines, and the units of each item locked (an unknown SKU is absent).
func lock(ctx context.Context, tx pgx.Tx, id string, lines []Line) (status string, held []Line, levels map[string]level, err error) {
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
	levels = map[string]level{}
	collect := func(rows pgx.Rows) error {
		var sku string
		var lv level
		_, err := pgx.ForEachRow(rows, []any{&sku, &lv.onHand, &lv.reserved}, func() error { levels[sku] = lv; return nil })
		return err
	}
	if lines != nil {
		skus := make([]string, len(lines))
		for i, l := range lines {
			skus[i] = l.SKU
		}
		b.Queue(`SELECT sku, on_hand, reserved FROM inventory.items WHERE sku = ANY($1) ORDER BY sku FOR UPDATE`, skus).Query(collect)
	} else {
		b.Queue(`SELECT sku, on_hand, reserved FROM inventory.items WHERE sku IN (
			SELECT l->>'sku' FROM inventory.reservations r, jsonb_array_elements(r.lines) l
			 WHERE r.id = $1 AND r.status IN ('reserved', 'committed')) ORDER BY sku FOR UPDATE`, id).Query(collect)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return "", nil, nil, fmt.Errorf("inventory: lock reservation %s: %w", id, err)
	}
	return status, held, levels, nil
}

// queueMoves queues the update of every line's item, on hand changed by
// onHand and reserved by reserved times the line's quantity (each -1, 0 or
// 1), and for each item its inventory.stock_level_changed.v1 with its units
// after the move, from levels (its units as locked).
func queueMoves(ctx context.Context, b *pgx.Batch, id, move string, lines []Line, levels map[string]level, onHand, reserved int64) error {
	skus := make([]string, len(lines))
	qs := make([]int64, len(lines))
	evs := make([]outbox.Event, len(lines))
	for i, l := range lines {
		skus[i], qs[i] = l.SKU, l.Quantity
		d := StockLevelChanged{SKU: l.SKU, ReservationID: id, Move: move, OnHandChange: onHand * l.Quantity, ReservedChange: reserved * l.Quantity}
		d.OnHand, d.Reserved = levels[l.SKU].onHand+d.OnHandChange, levels[l.SKU].reserved+d.ReservedChange
		evs[i] = EventStockLevelChanged.New(l.SKU, d)
	}
	b.Queue(`UPDATE inventory.items i SET on_hand = i.on_hand + $3 * x.q, reserved = i.reserved + $4 * x.q,
		updated_at = clock_timestamp()
		FROM unnest($1::text[], $2::bigint[]) AS x(sku, q) WHERE i.sku = x.sku`, skus, qs, onHand, reserved)
	_, err := outbox.Queue(ctx, b, evs...)
	return err
}
