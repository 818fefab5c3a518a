package reporting

import "github.com/cairn-dev/cairn/outbox/projection"

// The stock projection: per SKU, what the warehouse holds (on hand), what
// reservations hold (reserved), what is left (available = on hand −
// reserved), the units sold (taken out of the warehouse by approved
// orders and not given back) and when its stock last changed.
//
// It keeps the parts whose sum is the stock, each order-tolerant: the
// initial stock from item_added (the earliest if two differ), every
// restock once (by event id), and per reservation the set of what
// happened to it (reserved, committed, released: flags only ever set)
// with its lines. A reservation holds its units while reserved and
// neither committed nor released; once committed and not released its
// units have left the warehouse (sold); released, it holds nothing. A
// batch recomputes what each reservation it touches contributes and adds
// the difference to its SKUs. So on hand = initial + restocked −
// committed, in any order of arrival, as the inventory module keeps it.
const stockName = "reporting_stock"

// stockVersion is bumped whenever the SQL below changes.
const stockVersion = 1

// reservationTypes are the events that change what a reservation holds.
const reservationTypes = `(@stock_reserved, @stock_committed, @stock_released)`

// linesKey orders the events that carry a reservation's lines: the
// reservation's own first, then by time and id (fixed-width text, so the
// text order is that order).
const linesKey = `CASE type WHEN @stock_reserved THEN '1' WHEN @stock_committed THEN '2' ELSE '3' END
	|| to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || id::text`

func stockSpec() projection.Spec {
	return projection.Spec{
		Name: stockName, Version: stockVersion, Schema: "reporting",
		Tables: []string{"stock", "stock_reservations", "stock_restocks"},
		Events: []string{itemAdded, priceChanged, restocked, stockReserved, stockCommitted, stockReleased},
		Create: sqls(`
CREATE TABLE {stock} (
    sku           text        PRIMARY KEY,
    name          text,
    unit_price    bigint,
    currency      text,
    price_version bigint,
    price_event   uuid,
    initial       bigint      NOT NULL DEFAULT 0,
    item_at       timestamptz,
    item_event    uuid,
    restocked     bigint      NOT NULL DEFAULT 0,
    reserved      bigint      NOT NULL DEFAULT 0,
    committed     bigint      NOT NULL DEFAULT 0,
    last_change   timestamptz
)`, `
CREATE TABLE {stock_reservations} (
    reservation_id text    PRIMARY KEY,
    reserved       boolean NOT NULL,
    committed      boolean NOT NULL,
    released       boolean NOT NULL,
    lines          jsonb,
    lines_key      text
)`, `
CREATE TABLE {stock_restocks} (
    event_id uuid        PRIMARY KEY,
    sku      text        NOT NULL,
    quantity bigint      NOT NULL,
    at       timestamptz NOT NULL
)`),
		Apply: sqls(`
INSERT INTO {stock} AS s (sku, name, initial, item_at, item_event)
SELECT DISTINCT ON (data->>'sku') data->>'sku', data->>'name', (data->>'on_hand')::bigint, time, id
FROM {batch} WHERE type = @item_added
ORDER BY data->>'sku', time, id
ON CONFLICT (sku) DO UPDATE SET name = excluded.name, initial = excluded.initial, item_at = excluded.item_at,
    item_event = excluded.item_event
WHERE s.item_at IS NULL OR (excluded.item_at, excluded.item_event) < (s.item_at, s.item_event)`, `
INSERT INTO {stock} AS s (sku, unit_price, currency, price_version, price_event)
SELECT DISTINCT ON (data->>'sku') data->>'sku', (data->'unit_price'->>'amount')::bigint, data->'unit_price'->>'currency',
       (data->>'version')::bigint, id
FROM {batch} WHERE type IN (@item_added, @price_changed)
ORDER BY data->>'sku', (data->>'version')::bigint DESC, id DESC
ON CONFLICT (sku) DO UPDATE SET unit_price = excluded.unit_price, currency = excluded.currency,
    price_version = excluded.price_version, price_event = excluded.price_event
WHERE s.price_version IS NULL OR (excluded.price_version, excluded.price_event) > (s.price_version, s.price_event)`, `
WITH fresh AS (
    INSERT INTO {stock_restocks} (event_id, sku, quantity, at)
    SELECT DISTINCT ON (id) id, data->>'sku', (data->>'quantity')::bigint, time FROM {batch} WHERE type = @restocked
    ON CONFLICT (event_id) DO NOTHING
    RETURNING sku, quantity
)
INSERT INTO {stock} AS s (sku, restocked)
SELECT sku, sum(quantity) FROM fresh GROUP BY sku
ON CONFLICT (sku) DO UPDATE SET restocked = s.restocked + excluded.restocked`, `
WITH inc AS (
    SELECT data->>'reservation_id' AS reservation_id,
           bool_or(type = @stock_reserved) AS reserved, bool_or(type = @stock_committed) AS committed,
           bool_or(type = @stock_released) AS released,
           (array_agg(data->'lines' ORDER BY `+linesKey+`) FILTER (WHERE jsonb_array_length(data->'lines') > 0))[1] AS lines,
           min(`+linesKey+`) FILTER (WHERE jsonb_array_length(data->'lines') > 0) AS lines_key
    FROM {batch} WHERE type IN `+reservationTypes+`
    GROUP BY 1
), old AS (
    SELECT r.* FROM {stock_reservations} r JOIN inc i ON i.reservation_id = r.reservation_id
), up AS (
    INSERT INTO {stock_reservations} AS r (reservation_id, reserved, committed, released, lines, lines_key)
    SELECT reservation_id, reserved, committed, released, lines, lines_key FROM inc
    ON CONFLICT (reservation_id) DO UPDATE SET
        reserved = r.reserved OR excluded.reserved, committed = r.committed OR excluded.committed,
        released = r.released OR excluded.released,
        lines = CASE WHEN r.lines_key IS NULL OR excluded.lines_key < r.lines_key THEN excluded.lines ELSE r.lines END,
        lines_key = CASE WHEN r.lines_key IS NULL OR excluded.lines_key < r.lines_key THEN excluded.lines_key ELSE r.lines_key END
    RETURNING r.*
), contrib AS (
    SELECT l->>'sku' AS sku,
           CASE WHEN u.reserved AND NOT u.committed AND NOT u.released THEN (l->>'quantity')::bigint ELSE 0 END AS reserved,
           CASE WHEN u.committed AND NOT u.released THEN (l->>'quantity')::bigint ELSE 0 END AS committed
    FROM up u CROSS JOIN LATERAL jsonb_array_elements(coalesce(u.lines, '[]')) l
    UNION ALL
    SELECT l->>'sku',
           -CASE WHEN o.reserved AND NOT o.committed AND NOT o.released THEN (l->>'quantity')::bigint ELSE 0 END,
           -CASE WHEN o.committed AND NOT o.released THEN (l->>'quantity')::bigint ELSE 0 END
    FROM old o CROSS JOIN LATERAL jsonb_array_elements(coalesce(o.lines, '[]')) l
)
INSERT INTO {stock} AS s (sku, reserved, committed)
SELECT sku, sum(reserved), sum(committed) FROM contrib GROUP BY sku
ON CONFLICT (sku) DO UPDATE SET reserved = s.reserved + excluded.reserved, committed = s.committed + excluded.committed`, `
INSERT INTO {stock} AS s (sku, last_change)
SELECT sku, max(time) FROM (
    SELECT data->>'sku' AS sku, time FROM {batch} WHERE type IN (@item_added, @restocked)
    UNION ALL
    SELECT l->>'sku', b.time FROM {batch} b CROSS JOIN LATERAL jsonb_array_elements(b.data->'lines') l
    WHERE b.type IN `+reservationTypes+`
) x
GROUP BY sku
ON CONFLICT (sku) DO UPDATE SET last_change = greatest(s.last_change, excluded.last_change)`),
		Checks: []projection.Check{{
			Name: "stock", Table: "stock", Key: []string{"sku"},
			Columns: []string{"name", "unit_price", "currency", "initial", "restocked", "reserved", "committed", "last_change"},
			Sums:    []string{"initial", "restocked", "reserved", "committed"},
			// In one pass over each kind of event, grouped by SKU.
			Expected: types.Replace(`
WITH item AS (
    SELECT DISTINCT ON (data->>'sku') data->>'sku' AS sku, data->>'name' AS name, (data->>'on_hand')::bigint AS initial
    FROM events WHERE type = @item_added ORDER BY data->>'sku', time, id
), price AS (
    SELECT DISTINCT ON (data->>'sku') data->>'sku' AS sku, (data->'unit_price'->>'amount')::bigint AS unit_price,
           data->'unit_price'->>'currency' AS currency
    FROM events WHERE type IN (@item_added, @price_changed) ORDER BY data->>'sku', (data->>'version')::bigint DESC, id DESC
), restock AS (
    SELECT sku, sum(q) AS restocked FROM (
        SELECT DISTINCT ON (id) data->>'sku' AS sku, (data->>'quantity')::bigint AS q FROM events WHERE type = @restocked
    ) x GROUP BY sku
), res AS (
    SELECT bool_or(type = @stock_reserved) AS r, bool_or(type = @stock_committed) AS c, bool_or(type = @stock_released) AS rel,
           (array_agg(data->'lines' ORDER BY ` + linesKey + `) FILTER (WHERE jsonb_array_length(data->'lines') > 0))[1] AS lines
    FROM events WHERE type IN ` + reservationTypes + ` GROUP BY data->>'reservation_id'
), held AS (
    SELECT l->>'sku' AS sku,
           sum(CASE WHEN r AND NOT c AND NOT rel THEN (l->>'quantity')::bigint ELSE 0 END) AS reserved,
           sum(CASE WHEN c AND NOT rel THEN (l->>'quantity')::bigint ELSE 0 END) AS committed
    FROM res CROSS JOIN LATERAL jsonb_array_elements(coalesce(lines, '[]')) l GROUP BY 1
), changed AS (
    SELECT sku, max(time) AS last_change FROM (
        SELECT data->>'sku' AS sku, time FROM events WHERE type IN (@item_added, @restocked)
        UNION ALL
        SELECT l->>'sku', e.time FROM events e CROSS JOIN LATERAL jsonb_array_elements(e.data->'lines') l
        WHERE e.type IN ` + reservationTypes + `
    ) x GROUP BY sku
), skus AS (
    SELECT sku FROM item UNION SELECT sku FROM price UNION SELECT sku FROM restock
    UNION SELECT sku FROM held UNION SELECT sku FROM changed
)
SELECT s.sku, i.name, p.unit_price, p.currency, coalesce(i.initial, 0) AS initial, coalesce(r.restocked, 0) AS restocked,
       coalesce(h.reserved, 0) AS reserved, coalesce(h.committed, 0) AS committed, c.last_change
FROM skus s LEFT JOIN item i ON i.sku = s.sku LEFT JOIN price p ON p.sku = s.sku LEFT JOIN restock r ON r.sku = s.sku
     LEFT JOIN held h ON h.sku = s.sku LEFT JOIN changed c ON c.sku = s.sku`),
		}},
	}
}
