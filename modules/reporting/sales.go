package reporting

import "github.com/cairn-dev/cairn/outbox/projection"

// The daily sales projection: per day (UTC, of the event's time) and
// currency, the orders placed, approved, rejected (and by reason) and
// cancelled, and the amount approved.
//
// Counting events would count a redelivery twice. Instead each (order,
// kind) is a fact kept once (the earliest by time and id), and the daily
// rows are the sums of the facts: a batch adds what its new facts
// contribute and takes away what the facts they replaced contributed, in
// the statement that replaces them. A row whose sums all come back to zero
// is deleted, so any order of arrival leaves the same rows.
const salesName = "reporting_daily_sales"

// salesVersion is bumped whenever the SQL below changes.
const salesVersion = 1

func salesSpec() projection.Spec {
	return projection.Spec{
		Name: salesName, Version: salesVersion, Schema: "reporting",
		Tables: []string{"sales_facts", "daily_sales", "daily_rejections"},
		Events: []string{orderPlaced, orderApproved, orderRejected, orderCancelled},
		Create: sqls(`
CREATE TABLE {sales_facts} (
    order_id text        NOT NULL,
    kind     text        NOT NULL,
    at       timestamptz NOT NULL,
    event_id uuid        NOT NULL,
    day      date        NOT NULL,
    currency text        NOT NULL,
    amount   bigint      NOT NULL,
    reason   text        NOT NULL,
    PRIMARY KEY (order_id, kind)
)`, `
CREATE TABLE {daily_sales} (
    day             date   NOT NULL,
    currency        text   NOT NULL,
    placed          bigint NOT NULL,
    approved        bigint NOT NULL,
    rejected        bigint NOT NULL,
    cancelled       bigint NOT NULL,
    approved_amount bigint NOT NULL,
    PRIMARY KEY (day, currency)
)`, `
CREATE TABLE {daily_rejections} (
    day      date   NOT NULL,
    currency text   NOT NULL,
    reason   text   NOT NULL,
    orders   bigint NOT NULL,
    PRIMARY KEY (day, currency, reason)
)`),
		Apply: sqls(`
WITH inc AS (
    SELECT DISTINCT ON (order_id, kind) * FROM (
        SELECT data->>'order_id' AS order_id,
               CASE type WHEN @order_placed THEN 'placed' WHEN @order_approved THEN 'approved'
                         WHEN @order_rejected THEN 'rejected' ELSE 'cancelled' END AS kind,
               time AS at, id AS event_id, (time AT TIME ZONE 'UTC')::date AS day,
               data->'total'->>'currency' AS currency, (data->'total'->>'amount')::bigint AS amount,
               coalesce(data->>'reason', '') AS reason
        FROM {batch} WHERE type IN (@order_placed, @order_approved, @order_rejected, @order_cancelled)
    ) x
    ORDER BY order_id, kind, at, event_id
), old AS (
    SELECT f.* FROM {sales_facts} f JOIN inc i ON i.order_id = f.order_id AND i.kind = f.kind
), up AS (
    INSERT INTO {sales_facts} AS f (order_id, kind, at, event_id, day, currency, amount, reason)
    SELECT order_id, kind, at, event_id, day, currency, amount, reason FROM inc
    ON CONFLICT (order_id, kind) DO UPDATE SET at = excluded.at, event_id = excluded.event_id, day = excluded.day,
        currency = excluded.currency, amount = excluded.amount, reason = excluded.reason
    WHERE (excluded.at, excluded.event_id) < (f.at, f.event_id)
    RETURNING f.order_id, f.kind, f.day, f.currency, f.amount, f.reason
), delta AS (
    SELECT day, currency, kind, reason, 1 AS n, amount FROM up
    UNION ALL
    SELECT o.day, o.currency, o.kind, o.reason, -1, -o.amount
    FROM old o JOIN up u ON u.order_id = o.order_id AND u.kind = o.kind
), sales AS (
    INSERT INTO {daily_sales} AS s (day, currency, placed, approved, rejected, cancelled, approved_amount)
    SELECT day, currency,
           coalesce(sum(n) FILTER (WHERE kind = 'placed'), 0), coalesce(sum(n) FILTER (WHERE kind = 'approved'), 0),
           coalesce(sum(n) FILTER (WHERE kind = 'rejected'), 0), coalesce(sum(n) FILTER (WHERE kind = 'cancelled'), 0),
           coalesce(sum(amount) FILTER (WHERE kind = 'approved'), 0)
    FROM delta GROUP BY day, currency
    ON CONFLICT (day, currency) DO UPDATE SET placed = s.placed + excluded.placed, approved = s.approved + excluded.approved,
        rejected = s.rejected + excluded.rejected, cancelled = s.cancelled + excluded.cancelled,
        approved_amount = s.approved_amount + excluded.approved_amount
), rejections AS (
    INSERT INTO {daily_rejections} AS r (day, currency, reason, orders)
    SELECT day, currency, reason, sum(n) FROM delta WHERE kind = 'rejected' GROUP BY day, currency, reason
    ON CONFLICT (day, currency, reason) DO UPDATE SET orders = r.orders + excluded.orders
)
SELECT count(*) FROM delta`,
			`DELETE FROM {daily_sales} WHERE placed = 0 AND approved = 0 AND rejected = 0 AND cancelled = 0 AND approved_amount = 0`,
			`DELETE FROM {daily_rejections} WHERE orders = 0`),
		Checks: []projection.Check{{
			Name: "daily_sales", Table: "daily_sales", Key: []string{"day", "currency"},
			Columns: []string{"placed", "approved", "rejected", "cancelled", "approved_amount"},
			Sums:    []string{"placed", "approved", "rejected", "cancelled", "approved_amount"},
			// In one pass: the first event of each (order, type), counted
			// by its day.
			Expected: types.Replace(`
SELECT day, currency,
       count(*) FILTER (WHERE type = @order_placed) AS placed, count(*) FILTER (WHERE type = @order_approved) AS approved,
       count(*) FILTER (WHERE type = @order_rejected) AS rejected, count(*) FILTER (WHERE type = @order_cancelled) AS cancelled,
       coalesce(sum(amount) FILTER (WHERE type = @order_approved), 0) AS approved_amount
FROM (SELECT DISTINCT ON (data->>'order_id', type) type, (time AT TIME ZONE 'UTC')::date AS day,
             data->'total'->>'currency' AS currency, (data->'total'->>'amount')::bigint AS amount
      FROM events ORDER BY data->>'order_id', type, time, id) x
GROUP BY day, currency`),
		}, {
			Name: "daily_rejections", Table: "daily_rejections", Key: []string{"day", "currency", "reason"},
			Columns: []string{"orders"}, Sums: []string{"orders"},
			Expected: types.Replace(`
SELECT day, currency, reason, count(*) AS orders
FROM (SELECT DISTINCT ON (data->>'order_id') (time AT TIME ZONE 'UTC')::date AS day, data->'total'->>'currency' AS currency,
             coalesce(data->>'reason', '') AS reason
      FROM events WHERE type = @order_rejected ORDER BY data->>'order_id', time, id) x
GROUP BY day, currency, reason`),
		}},
	}
}
