package a

const selectThings = `
SELECT id
FROM b.things
WHERE kind = 'c.not_a_table'`

const appendEvent = "INSERT INTO outbox.events (subject) VALUES ($1)"

const selectWidgets = "SELECT id FROM a.widgets -- never b.things"
