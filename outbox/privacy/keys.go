package privacy

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/outbox"
)

// Keys are people's keys by subject id; a subject present with a nil key
// is forgotten, one absent has no key yet.
type Keys map[string][]byte

// Batcher runs a batch: a *pgx.Conn, a pgx.Tx or a pool.
type Batcher interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// EnsureKeys returns the keys of subjects, making one for each subject that
// has none yet (forgotten ones stay forgotten), in one round trip. In a
// transaction the rows are locked FOR SHARE until it ends, so a Forget of
// one of them waits: what the transaction seals with a key is written
// before the key is destroyed. Errors: the database's.
func EnsureKeys(ctx context.Context, db Batcher, subjects []string) (Keys, error) {
	subjects = uniq(subjects)
	if len(subjects) == 0 {
		return Keys{}, nil
	}
	fresh := make([][]byte, len(subjects))
	for i := range subjects {
		k, err := outbox.NewKey()
		if err != nil {
			return nil, err
		}
		fresh[i] = k
	}
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO privacy.subject_keys (subject, key) SELECT * FROM unnest($1::text[], $2::bytea[]) ON CONFLICT DO NOTHING`, subjects, fresh)
	keys := Keys{}
	b.Queue(`SELECT subject, key FROM privacy.subject_keys WHERE subject = ANY($1) FOR SHARE`, subjects).Query(func(rows pgx.Rows) error {
		var s string
		var k []byte
		_, err := pgx.ForEachRow(rows, []any{&s, &k}, func() error { keys[s] = k; return nil })
		return err
	})
	if err := db.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("privacy: keys: %w", err)
	}
	return keys, nil
}

// Querier reads: a pool, a connection or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// LoadKeys returns the keys subjects have; it makes none.
func LoadKeys(ctx context.Context, db Querier, subjects []string) (Keys, error) {
	subjects = uniq(subjects)
	keys := Keys{}
	if len(subjects) == 0 {
		return keys, nil
	}
	rows, err := db.Query(ctx, `SELECT subject, key FROM privacy.subject_keys WHERE subject = ANY($1)`, subjects)
	if err != nil {
		return nil, fmt.Errorf("privacy: read keys: %w", err)
	}
	var s string
	var k []byte
	if _, err := pgx.ForEachRow(rows, []any{&s, &k}, func() error { keys[s] = k; return nil }); err != nil {
		return nil, fmt.Errorf("privacy: read keys: %w", err)
	}
	return keys, nil
}

func uniq(ss []string) []string {
	out := slices.Clone(ss)
	slices.Sort(out)
	return slices.Compact(out)
}
