-- +goose Up
CREATE SCHEMA notes;

-- A note, and its number of words once the notes_word_count handler ran.
CREATE TABLE notes.notes (
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    text       text        NOT NULL,
    words      int,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP SCHEMA notes CASCADE;
