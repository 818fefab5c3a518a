package pgserver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNotRunning: no server is running on the data directory (or it does
// not answer).
var ErrNotRunning = errors.New("pgserver: no PostgreSQL server is running on the data directory")

// Running returns the URL of the "cairn" database on the server another
// process (a `cairn serve`) runs on dataDir, once a connection with it
// succeeded; ErrNotRunning when there is none. Commands use it to work
// beside a running Cairn, which holds the data directory: starting a
// second server there would fail.
func Running(ctx context.Context, dataDir string) (string, error) {
	url, err := URLOf(dataDir)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return "", fmt.Errorf("%w (%v)", ErrNotRunning, err)
	}
	return url, conn.Close(ctx)
}

// URLOf returns the URL of the "cairn" database of the server on dataDir,
// with its superuser password, whether it runs or not. Its Unix socket is
// in the data directory; when the path is too long for a socket, the
// server listens on a loopback port that only a running server's
// postmaster.pid tells (ErrNotRunning otherwise).
func URLOf(dataDir string) (string, error) {
	dataDir, err := filepath.Abs(dataDir)
	if err != nil {
		return "", fmt.Errorf("resolve data directory: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "PG_VERSION")); err != nil {
		return "", fmt.Errorf("%s holds no PostgreSQL data directory yet (start Cairn once): %w", dataDir, err)
	}
	pw, err := readPassword(dataDir)
	if err != nil {
		return "", err
	}
	m := listenMode{port: socketPort}
	if len(socketPath(dataDir)) > maxSocketPath {
		port, err := runningPort(dataDir)
		if err != nil {
			return "", err
		}
		m = listenMode{tcp: true, port: port}
	}
	return connURL(pw, dataDir, m, appDB), nil
}

// runningPort reads the port from postmaster.pid (its fourth line).
func runningPort(dataDir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrNotRunning, err)
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < 4 {
		return 0, fmt.Errorf("%w: postmaster.pid is incomplete", ErrNotRunning)
	}
	port, err := strconv.Atoi(strings.TrimSpace(lines[3]))
	if err != nil {
		return 0, fmt.Errorf("%w: postmaster.pid has no port: %v", ErrNotRunning, err)
	}
	return port, nil
}
