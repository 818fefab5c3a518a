-- +goose Up
CREATE SCHEMA outbox;
CREATE TABLE outbox.events (subject text NOT NULL);
