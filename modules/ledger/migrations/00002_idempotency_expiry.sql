-- +goose NO TRANSACTION
-- +goose Up
-- Idempotency keys expire after CAIRN_IDEMPOTENCY_RETENTION. The ledger's
-- sweep finds expired keys by age through this index, oldest first, a
-- batch at a time. Built concurrently: the table held every key ever used,
-- and keyed deposits must not wait for the build. A build that failed
-- leaves an invalid index behind; goose then runs this file again, and
-- the DROP removes it first.
DROP INDEX CONCURRENTLY IF EXISTS ledger.idempotency_keys_created_at;
CREATE INDEX CONCURRENTLY idempotency_keys_created_at ON ledger.idempotency_keys (created_at);

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS ledger.idempotency_keys_created_at;
