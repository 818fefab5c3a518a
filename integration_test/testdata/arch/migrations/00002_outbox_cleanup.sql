-- +goose Up
-- The platform reaching into a module's table: not allowed.
DELETE FROM outbox.events WHERE subject IN (SELECT 'events.a.' || id FROM a.widgets);
