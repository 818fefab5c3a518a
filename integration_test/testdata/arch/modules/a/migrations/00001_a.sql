-- +goose Up
CREATE SCHEMA a;
-- Every widget is made of one of b's things.
CREATE TABLE a.widgets (id bigint PRIMARY KEY, thing bigint REFERENCES b.things (id));
