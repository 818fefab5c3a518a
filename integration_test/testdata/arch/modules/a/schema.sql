CREATE VIEW a.stuff_view AS SELECT * FROM c.stuff;
