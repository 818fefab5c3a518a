-- +goose Up
-- The reporting module's schema. Its tables are the versions of its
-- projections (<table>_v<version>), which outbox/projection makes, fills
-- from the lake and the stream, and drops when they are no longer kept.
CREATE SCHEMA reporting;

-- +goose Down
DROP SCHEMA reporting CASCADE;
