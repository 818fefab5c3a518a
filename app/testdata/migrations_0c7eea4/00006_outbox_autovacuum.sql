-- +goose Up
-- outbox.events is a queue: every row is deleted seconds after it is
-- inserted. Vacuum it after a fixed number of dead rows rather than a
-- fraction of a table that is nearly always empty, and without throttling.
ALTER TABLE outbox.events SET (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 10000,
    autovacuum_vacuum_cost_delay = 0,
    autovacuum_vacuum_insert_scale_factor = 0,
    autovacuum_vacuum_insert_threshold = 100000
);

-- +goose Down
ALTER TABLE outbox.events RESET (
    autovacuum_vacuum_scale_factor,
    autovacuum_vacuum_threshold,
    autovacuum_vacuum_cost_delay,
    autovacuum_vacuum_insert_scale_factor,
    autovacuum_vacuum_insert_threshold
);
