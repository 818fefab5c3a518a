// Package testenv starts the real infrastructure tests run against: one
// PostgreSQL server per test binary (a fresh, migrated database per test)
// and an in-process NATS server with JetStream per test. Set
// CAIRN_DATABASE_URL to use an existing server instead. Missing
// infrastructure fails the test loudly; nothing is ever skipped.
package testenv

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/pgserver"
)

var (
	serverOnce sync.Once
	server     *pgserver.Server
	serverDir  string
	serverURL  string // admin URL of the shared server's "cairn" database
	serverErr  error
)

// Main runs a package's tests and then stops the shared PostgreSQL server
// and, if a test started it, the shared NATS cluster.
// Call it from TestMain: func TestMain(m *testing.M) { testenv.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	stopSharedNATSCluster()
	if server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := server.Stop(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "testenv: stop postgres:", err)
		}
		cancel()
	}
	if serverDir != "" {
		_ = os.RemoveAll(serverDir)
	}
	os.Exit(code)
}

// sharedServer starts the binary's PostgreSQL server on first use.
func sharedServer(tb testing.TB) string {
	tb.Helper()
	serverOnce.Do(func() {
		if url := os.Getenv("CAIRN_DATABASE_URL"); url != "" {
			serverURL = url
			return
		}
		// Under /tmp with o+x so the unprivileged postgres user can reach
		// it when tests run as root; t.TempDir() is 0700.
		dir, err := os.MkdirTemp("/tmp", "cairn-test-pg-")
		if err == nil {
			err = os.Chmod(dir, 0o755)
		}
		if err != nil {
			serverErr = fmt.Errorf("testenv: temp dir: %w", err)
			return
		}
		serverDir = dir
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		server, serverErr = pgserver.Start(ctx, pgserver.Config{DataDir: dir + "/pg"})
		if serverErr == nil {
			serverURL = server.URL()
		}
	})
	if serverErr != nil {
		tb.Fatalf("testenv: PostgreSQL is required for this test and could not be started: %v", serverErr)
	}
	return serverURL
}

// Server returns the shared embedded server, failing the test if the
// binary uses an external one (fault tests need to restart it).
func Server(tb testing.TB) *pgserver.Server {
	tb.Helper()
	sharedServer(tb)
	if server == nil {
		tb.Fatal("testenv: this test restarts PostgreSQL and needs the embedded server; unset CAIRN_DATABASE_URL")
	}
	return server
}
