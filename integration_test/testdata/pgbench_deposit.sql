-- One ledger deposit as plain SQL: the ceiling BenchmarkLedger compares the
-- HTTP deposit against. The same five round trips as the module (BEGIN,
-- UPDATE ... RETURNING, outbox INSERT, entries INSERT, COMMIT) on tables of
-- the same shape, but no trigger and no outbox ordering subquery.
--
-- Variables: nconn (the client count) and payload (a real event's JSON).
-- Client c only touches accounts c, c+nconn, c+2*nconn, ..., so no two
-- clients ever wait on one row lock, as in the HTTP load generator.
\set k random(0, (999 - :client_id) / :nconn)
\set aid :client_id + :nconn * :k
BEGIN;
UPDATE accounts
   SET balance = balance + 1, version = version + 1, updated_at = greatest(clock_timestamp(), updated_at)
 WHERE id = ('00000000-0000-4000-8000-' || lpad(:aid::text, 12, '0'))::uuid
   AND balance + least(1::bigint, 0) >= 0 AND balance <= 9223372036854775807 - greatest(1::bigint, 0)
RETURNING id AS acct, balance, version, updated_at \gset
INSERT INTO outbox (txid, event_id, key, subject, payload)
VALUES (pg_current_xact_id()::text::bigint, gen_random_uuid(), :acct, 'events.ledger.deposited.v1', convert_to(:payload, 'UTF8'))
RETURNING event_id \gset
INSERT INTO entries (account_id, version, type, amount, balance_after, occurred_at, event_id)
VALUES (:acct, :version, 'deposited', 1, :balance, :updated_at, :event_id);
END;
