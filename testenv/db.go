package testenv

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/cairn-dev/cairn/app"
)

// DB is a fresh, migrated database of its own for one test.
type DB struct {
	Pool *pgxpool.Pool
	URL  string
	Name string
}

var dbCounter atomic.Int64

// MustDB creates a database for this test, applies every migration (the
// platform's and all modules'), and drops it when the test ends.
func MustDB(tb testing.TB) *DB {
	tb.Helper()
	db := MustEmptyDB(tb)
	if err := Migrate(context.Background(), db.Pool); err != nil {
		tb.Fatalf("testenv: migrate %s: %v", db.Name, err)
	}
	return db
}

// MustEmptyDB creates a database with no migrations applied.
func MustEmptyDB(tb testing.TB) *DB {
	tb.Helper()
	admin := sharedServer(tb)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name := fmt.Sprintf("t_%d_%d", time.Now().UnixNano()%1e9, dbCounter.Add(1))
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		tb.Fatalf("testenv: connect to postgres: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("testenv: create database: %v", err)
	}
	dbURL := withDatabase(tb, admin, name)
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		tb.Fatalf("testenv: pool: %v", err)
	}
	tb.Cleanup(func() {
		pool.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			tb.Errorf("testenv: connect to drop %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Errorf("testenv: drop %s: %v", name, err)
		}
	})
	return &DB{Pool: pool, URL: dbURL, Name: name}
}

// Migrate applies the platform's migrations and those of every module
// Cairn ships through the pool, as the app does at start-up.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	db := stdlib.OpenDBFromPool(pool)
	defer func(db *sql.DB) { _ = db.Close() }(db)
	r, err := app.Migrator(db, app.Modules())
	if err != nil {
		return err
	}
	if _, err := r.Up(ctx); err != nil {
		return fmt.Errorf("migrate up: %w", err)
	}
	return nil
}

func withDatabase(tb testing.TB, raw, name string) string {
	tb.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		tb.Fatalf("testenv: database URL: %v", err)
	}
	u.Path = "/" + strings.TrimPrefix(name, "/")
	return u.String()
}
