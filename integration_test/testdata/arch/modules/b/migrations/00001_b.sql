-- +goose Up
CREATE SCHEMA b;
CREATE TABLE b.things (id bigint PRIMARY KEY, kind text NOT NULL);
