package reporting

import "github.com/cairn-dev/cairn/outbox/projection"

// The accounts projection: per day (UTC, of the event's time) and
// currency, the ledger's accounts opened, deposits and withdrawals and
// their sums. The ledger numbers each account's events (version 0 is the
// opening, each movement the next), so (account, version) identifies a
// movement: each is kept once, and only a movement seen for the first time
// adds to its day.
const accountsName = "reporting_accounts"

// accountsVersion is bumped whenever the SQL below changes.
const accountsVersion = 1

func accountsSpec() projection.Spec {
	return projection.Spec{
		Name: accountsName, Version: accountsVersion, Schema: "reporting",
		Tables: []string{"account_moves", "daily_accounts"},
		Events: []string{accountOpened, deposited, withdrawn},
		Create: sqls(`
CREATE TABLE {account_moves} (
    account_id text   NOT NULL,
    version    bigint NOT NULL,
    kind       text   NOT NULL,
    day        date   NOT NULL,
    currency   text   NOT NULL,
    amount     bigint NOT NULL,
    PRIMARY KEY (account_id, version)
)`, `
CREATE TABLE {daily_accounts} (
    day         date   NOT NULL,
    currency    text   NOT NULL,
    opened      bigint NOT NULL,
    deposits    bigint NOT NULL,
    deposited   bigint NOT NULL,
    withdrawals bigint NOT NULL,
    withdrawn   bigint NOT NULL,
    PRIMARY KEY (day, currency)
)`),
		Apply: sqls(`
WITH inc AS (
    SELECT DISTINCT ON (data->>'account_id', (data->>'version')::bigint)
           data->>'account_id' AS account_id, (data->>'version')::bigint AS version,
           CASE type WHEN @account_opened THEN 'opened' WHEN @deposited THEN 'deposit' ELSE 'withdrawal' END AS kind,
           (time AT TIME ZONE 'UTC')::date AS day, data->>'currency' AS currency,
           CASE WHEN type = @account_opened THEN 0 ELSE (data->>'amount')::bigint END AS amount
    FROM {batch} WHERE type IN (@account_opened, @deposited, @withdrawn)
    ORDER BY data->>'account_id', (data->>'version')::bigint, time, id
), fresh AS (
    INSERT INTO {account_moves} (account_id, version, kind, day, currency, amount)
    SELECT account_id, version, kind, day, currency, amount FROM inc
    ON CONFLICT (account_id, version) DO NOTHING
    RETURNING kind, day, currency, amount
)
INSERT INTO {daily_accounts} AS d (day, currency, opened, deposits, deposited, withdrawals, withdrawn)
SELECT day, currency, count(*) FILTER (WHERE kind = 'opened'),
       count(*) FILTER (WHERE kind = 'deposit'), coalesce(sum(amount) FILTER (WHERE kind = 'deposit'), 0),
       count(*) FILTER (WHERE kind = 'withdrawal'), coalesce(sum(amount) FILTER (WHERE kind = 'withdrawal'), 0)
FROM fresh GROUP BY day, currency
ON CONFLICT (day, currency) DO UPDATE SET opened = d.opened + excluded.opened, deposits = d.deposits + excluded.deposits,
    deposited = d.deposited + excluded.deposited, withdrawals = d.withdrawals + excluded.withdrawals,
    withdrawn = d.withdrawn + excluded.withdrawn`),
		Checks: []projection.Check{{
			Name: "daily_accounts", Table: "daily_accounts", Key: []string{"day", "currency"},
			Columns: []string{"opened", "deposits", "deposited", "withdrawals", "withdrawn"},
			Sums:    []string{"opened", "deposits", "deposited", "withdrawals", "withdrawn"},
			Expected: types.Replace(`
SELECT day, currency,
       count(*) FILTER (WHERE type = @account_opened) AS opened,
       count(*) FILTER (WHERE type = @deposited) AS deposits, coalesce(sum(amount) FILTER (WHERE type = @deposited), 0) AS deposited,
       count(*) FILTER (WHERE type = @withdrawn) AS withdrawals, coalesce(sum(amount) FILTER (WHERE type = @withdrawn), 0) AS withdrawn
FROM (SELECT DISTINCT ON (data->>'account_id', data->>'version') type, (time AT TIME ZONE 'UTC')::date AS day,
             data->>'currency' AS currency, (data->>'amount')::bigint AS amount
      FROM events ORDER BY data->>'account_id', data->>'version', time, id) x
GROUP BY day, currency`),
		}},
	}
}
