package reporting

import "github.com/cairn-dev/cairn/outbox/projection"

// The order lines projection: one row per order line, with the order's
// status and reason, its customer, the SKU, quantity, unit price and
// total, and what became of its credit, stock and payment: joining the
// events of orders, customers, inventory and payments.
//
// How it stays right whatever the order of arrival: every event about an
// order becomes a fact (order, kind), kept once whatever is redelivered
// (the earliest by time and id when two differ); an order's status and
// the state of its credit, stock and payment are a function of the set of
// its facts, recomputed for every order a batch touches; a line is made
// from order_placed with what the facts say so far, and set again
// whenever they change. Customer and item names live in tables of their
// own, joined when queried, so a name that arrives after the order needs
// no update of its lines.
const orderLinesName = "reporting_order_lines"

// orderLinesVersion is bumped whenever the SQL below changes.
const orderLinesVersion = 1

// orderFactTypes are the events that are facts about an order.
const orderFactTypes = `(@order_placed, @order_approved, @order_rejected, @order_cancelled,
	@credit_reserved, @credit_limit_exceeded, @credit_released,
	@stock_reserved, @stock_unavailable, @stock_committed, @stock_released,
	@payment_authorized, @payment_declined, @payment_voided)`

// orderOf is the order an event is about: the saga uses the order id as
// reservation id and payment id.
const orderOf = `coalesce(data->>'order_id', data->>'reservation_id', data->>'payment_id')`

func orderLinesSpec() projection.Spec {
	return projection.Spec{
		Name: orderLinesName, Version: orderLinesVersion, Schema: "reporting",
		Tables: []string{"order_lines", "order_facts", "order_customers", "order_items"},
		Events: []string{orderPlaced, orderApproved, orderRejected, orderCancelled,
			customerCreated, creditReserved, creditLimitExceeded, creditReleased,
			itemAdded, stockReserved, stockUnavailable, stockCommitted, stockReleased,
			paymentAuthorized, paymentDeclined, paymentVoided},
		Create: sqls(`
CREATE TABLE {order_facts} (
    order_id text        NOT NULL,
    kind     text        NOT NULL,
    at       timestamptz NOT NULL,
    event_id uuid        NOT NULL,
    reason   text,
    PRIMARY KEY (order_id, kind)
)`, `
CREATE TABLE {order_lines} (
    order_id           text        NOT NULL,
    line               int         NOT NULL,
    placed_at          timestamptz NOT NULL,
    customer_id        text        NOT NULL,
    sku                text        NOT NULL,
    quantity           bigint      NOT NULL,
    unit_price         bigint      NOT NULL,
    currency           text        NOT NULL,
    total              bigint      NOT NULL,
    status             text        NOT NULL,
    reason             text,
    credit             text        NOT NULL,
    stock              text        NOT NULL,
    payment            text        NOT NULL,
    stock_reserved     boolean     NOT NULL,
    payment_authorized boolean     NOT NULL,
    PRIMARY KEY (order_id, line)
)`,
			`CREATE INDEX ON {order_lines} (placed_at, order_id, line)`,
			`CREATE INDEX ON {order_lines} (customer_id, placed_at, order_id, line)`,
			`CREATE INDEX ON {order_lines} (sku, placed_at, order_id, line)`,
			`CREATE INDEX ON {order_lines} (status, placed_at, order_id, line)`, `
CREATE TABLE {order_customers} (
    customer_id text        PRIMARY KEY,
    name        text        NOT NULL,
    at          timestamptz NOT NULL,
    event_id    uuid        NOT NULL
)`, `
CREATE TABLE {order_items} (
    sku      text        PRIMARY KEY,
    name     text        NOT NULL,
    at       timestamptz NOT NULL,
    event_id uuid        NOT NULL
)`),
		Apply: sqls(`
INSERT INTO {order_customers} AS c (customer_id, name, at, event_id)
SELECT DISTINCT ON (data->>'customer_id') data->>'customer_id', '', time, id
FROM {batch} WHERE type = @customer_created
ORDER BY data->>'customer_id', time, id
ON CONFLICT (customer_id) DO UPDATE SET name = excluded.name, at = excluded.at, event_id = excluded.event_id
WHERE (excluded.at, excluded.event_id) < (c.at, c.event_id)`, `
INSERT INTO {order_items} AS i (sku, name, at, event_id)
SELECT DISTINCT ON (data->>'sku') data->>'sku', coalesce(data->>'name', ''), time, id
FROM {batch} WHERE type = @item_added
ORDER BY data->>'sku', time, id
ON CONFLICT (sku) DO UPDATE SET name = excluded.name, at = excluded.at, event_id = excluded.event_id
WHERE (excluded.at, excluded.event_id) < (i.at, i.event_id)`, `
INSERT INTO {order_facts} AS f (order_id, kind, at, event_id, reason)
SELECT DISTINCT ON (order_id, kind) order_id, kind, time, id, reason FROM (
    SELECT `+orderOf+` AS order_id,
           CASE type WHEN @order_placed THEN 'placed' WHEN @order_approved THEN 'approved'
                     WHEN @order_rejected THEN 'rejected' WHEN @order_cancelled THEN 'cancelled'
                     WHEN @credit_reserved THEN 'credit_reserved' WHEN @credit_limit_exceeded THEN 'credit_refused'
                     WHEN @credit_released THEN 'credit_released'
                     WHEN @stock_reserved THEN 'stock_reserved' WHEN @stock_unavailable THEN 'stock_unavailable'
                     WHEN @stock_committed THEN 'stock_committed' WHEN @stock_released THEN 'stock_released'
                     WHEN @payment_authorized THEN 'payment_authorized' WHEN @payment_declined THEN 'payment_declined'
                     WHEN @payment_voided THEN 'payment_voided' END AS kind,
           time, id, nullif(data->>'reason', '') AS reason
    FROM {batch} WHERE type IN `+orderFactTypes+`
) x
WHERE order_id IS NOT NULL
ORDER BY order_id, kind, time, id
ON CONFLICT (order_id, kind) DO UPDATE SET at = excluded.at, event_id = excluded.event_id, reason = excluded.reason
WHERE (excluded.at, excluded.event_id) < (f.at, f.event_id)`, `
WITH touched AS (
    SELECT DISTINCT `+orderOf+` AS order_id FROM {batch} WHERE type IN `+orderFactTypes+`
), st AS (
    SELECT f.order_id,
           CASE WHEN bool_or(kind = 'cancelled') THEN 'cancelled' WHEN bool_or(kind = 'rejected') THEN 'rejected'
                WHEN bool_or(kind = 'approved') THEN 'approved' ELSE 'pending' END AS status,
           CASE WHEN bool_or(kind = 'cancelled') THEN max(reason) FILTER (WHERE kind = 'cancelled')
                WHEN bool_or(kind = 'rejected') THEN max(reason) FILTER (WHERE kind = 'rejected') END AS reason,
           CASE WHEN bool_or(kind = 'credit_released') THEN 'released' WHEN bool_or(kind = 'credit_reserved') THEN 'reserved'
                WHEN bool_or(kind = 'credit_refused') THEN 'refused' ELSE 'none' END AS credit,
           CASE WHEN bool_or(kind = 'stock_released') THEN 'released' WHEN bool_or(kind = 'stock_committed') THEN 'committed'
                WHEN bool_or(kind = 'stock_reserved') THEN 'reserved' WHEN bool_or(kind = 'stock_unavailable') THEN 'unavailable'
                ELSE 'none' END AS stock,
           CASE WHEN bool_or(kind = 'payment_voided') THEN 'voided' WHEN bool_or(kind = 'payment_authorized') THEN 'authorized'
                WHEN bool_or(kind = 'payment_declined') THEN 'declined' ELSE 'none' END AS payment,
           bool_or(kind IN ('stock_reserved', 'stock_committed')) AS stock_reserved,
           bool_or(kind = 'payment_authorized') AS payment_authorized
    FROM {order_facts} f JOIN touched t ON t.order_id = f.order_id
    GROUP BY f.order_id
), placed AS (
    SELECT DISTINCT ON (data->>'order_id') data->>'order_id' AS order_id, data
    FROM {batch} WHERE type = @order_placed
    ORDER BY data->>'order_id', time, id
), ins AS (
    INSERT INTO {order_lines} (order_id, line, placed_at, customer_id, sku, quantity, unit_price, currency, total,
                               status, reason, credit, stock, payment, stock_reserved, payment_authorized)
    SELECT p.order_id, l.n::int, (p.data->>'placed_at')::timestamptz, p.data->>'customer_id', l.e->>'sku',
           (l.e->>'quantity')::bigint, (l.e->'unit_price'->>'amount')::bigint, l.e->'unit_price'->>'currency',
           (l.e->>'quantity')::bigint * (l.e->'unit_price'->>'amount')::bigint,
           s.status, s.reason, s.credit, s.stock, s.payment, s.stock_reserved, s.payment_authorized
    FROM placed p JOIN st s ON s.order_id = p.order_id
         CROSS JOIN LATERAL jsonb_array_elements(p.data->'lines') WITH ORDINALITY AS l(e, n)
    ON CONFLICT (order_id, line) DO NOTHING
)
UPDATE {order_lines} l
SET status = s.status, reason = s.reason, credit = s.credit, stock = s.stock, payment = s.payment,
    stock_reserved = s.stock_reserved, payment_authorized = s.payment_authorized
FROM st s
WHERE l.order_id = s.order_id
  AND (l.status, l.reason, l.credit, l.stock, l.payment, l.stock_reserved, l.payment_authorized)
      IS DISTINCT FROM (s.status, s.reason, s.credit, s.stock, s.payment, s.stock_reserved, s.payment_authorized)`),
		Checks: []projection.Check{{
			Name: "order_lines", Table: "order_lines", Key: []string{"order_id", "line"},
			Columns: []string{"placed_at", "customer_id", "sku", "quantity", "unit_price", "currency", "total",
				"status", "reason", "credit", "stock", "payment", "stock_reserved", "payment_authorized"},
			Sums: []string{"quantity", "total"},
			// In one pass: each order's first placement, and the set of
			// event types seen for it (with the first reason of each).
			Expected: types.Replace(`
SELECT p.order_id, l.n::int AS line, (p.data->>'placed_at')::timestamptz AS placed_at, p.data->>'customer_id' AS customer_id,
       l.e->>'sku' AS sku, (l.e->>'quantity')::bigint AS quantity, (l.e->'unit_price'->>'amount')::bigint AS unit_price,
       l.e->'unit_price'->>'currency' AS currency,
       (l.e->>'quantity')::bigint * (l.e->'unit_price'->>'amount')::bigint AS total,
       CASE WHEN @order_cancelled = ANY(o.seen) THEN 'cancelled' WHEN @order_rejected = ANY(o.seen) THEN 'rejected'
            WHEN @order_approved = ANY(o.seen) THEN 'approved' ELSE 'pending' END AS status,
       CASE WHEN @order_cancelled = ANY(o.seen) THEN o.cancel_reason
            WHEN @order_rejected = ANY(o.seen) THEN o.reject_reason END AS reason,
       CASE WHEN @credit_released = ANY(o.seen) THEN 'released' WHEN @credit_reserved = ANY(o.seen) THEN 'reserved'
            WHEN @credit_limit_exceeded = ANY(o.seen) THEN 'refused' ELSE 'none' END AS credit,
       CASE WHEN @stock_released = ANY(o.seen) THEN 'released' WHEN @stock_committed = ANY(o.seen) THEN 'committed'
            WHEN @stock_reserved = ANY(o.seen) THEN 'reserved' WHEN @stock_unavailable = ANY(o.seen) THEN 'unavailable'
            ELSE 'none' END AS stock,
       CASE WHEN @payment_voided = ANY(o.seen) THEN 'voided' WHEN @payment_authorized = ANY(o.seen) THEN 'authorized'
            WHEN @payment_declined = ANY(o.seen) THEN 'declined' ELSE 'none' END AS payment,
       (@stock_reserved = ANY(o.seen) OR @stock_committed = ANY(o.seen)) AS stock_reserved,
       @payment_authorized = ANY(o.seen) AS payment_authorized
FROM (SELECT DISTINCT ON (data->>'order_id') data->>'order_id' AS order_id, data FROM events
      WHERE type = @order_placed ORDER BY data->>'order_id', time, id) p
JOIN (SELECT ` + orderOf + ` AS order_id, array_agg(DISTINCT type) AS seen,
             (array_agg(nullif(data->>'reason', '') ORDER BY time, id) FILTER (WHERE type = @order_cancelled))[1] AS cancel_reason,
             (array_agg(nullif(data->>'reason', '') ORDER BY time, id) FILTER (WHERE type = @order_rejected))[1] AS reject_reason
      FROM events WHERE type IN ` + orderFactTypes + ` GROUP BY 1) o ON o.order_id = p.order_id
CROSS JOIN LATERAL jsonb_array_elements(p.data->'lines') WITH ORDINALITY AS l(e, n)`),
		}, {
			Name: "customers", Table: "order_customers", Key: []string{"customer_id"}, Columns: []string{"name"},
			Expected: types.Replace(`SELECT DISTINCT ON (data->>'customer_id') data->>'customer_id' AS customer_id, '' AS name
FROM events WHERE type = @customer_created ORDER BY data->>'customer_id', time, id`),
		}, {
			Name: "items", Table: "order_items", Key: []string{"sku"}, Columns: []string{"name"},
			Expected: types.Replace(`SELECT DISTINCT ON (data->>'sku') data->>'sku' AS sku, coalesce(data->>'name', '') AS name
FROM events WHERE type = @item_added ORDER BY data->>'sku', time, id`),
		}},
	}
}
