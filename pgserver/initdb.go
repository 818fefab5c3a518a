package pgserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

const (
	superuser = "cairn"
	appDB     = "cairn"
)

// passwordPath keeps the password next to, not inside, the data directory:
// the data directory belongs to the server's OS account, while the password
// must stay readable only by the account Cairn runs as.
func passwordPath(dataDir string) string { return dataDir + ".password" }

func newPassword() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate PostgreSQL password: %w", err)
	}
	return hex.EncodeToString(b), nil
}

func readPassword(dataDir string) (string, error) {
	path := passwordPath(dataDir)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("data directory %s is initialized but its password file %s is missing: "+
			"restore the file, or move the data directory away to start with an empty database", dataDir, path)
	}
	if err != nil {
		return "", fmt.Errorf("read PostgreSQL password: %w", err)
	}
	pw := strings.TrimSpace(string(b))
	if pw == "" {
		return "", fmt.Errorf("PostgreSQL password file %s is empty", path)
	}
	return pw, nil
}

// writeFileAtomic writes via rename so a crash never leaves a truncated
// password file, which would lock us out of an initialized cluster.
func writeFileAtomic(path string, data []byte, perm fs.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create temp file for %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return fmt.Errorf("chmod %s: %w", tmp, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s to %s: %w", tmp, path, err)
	}
	return nil
}

// initCluster runs initdb and returns the superuser password. The password
// file is written before initdb so that a successful initdb can never end up
// with its password lost; if initdb fails instead, the next start simply
// generates a new one.
func (s *Server) initCluster(ctx context.Context) (string, error) {
	s.log.Info("initializing PostgreSQL data directory (first run)", "bin_dir", s.binDir)
	pw, err := newPassword()
	if err != nil {
		return "", err
	}
	if err := writeFileAtomic(passwordPath(s.dataDir), []byte(pw+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("store PostgreSQL password: %w", err)
	}

	// initdb runs as the server's account, so the temporary copy it reads
	// must belong to that account. It goes next to the data directory rather
	// than into TMPDIR because we already know that place is reachable.
	pwFile, err := os.CreateTemp(filepath.Dir(s.dataDir), ".cairn-initdb-pw-*")
	if err != nil {
		return "", fmt.Errorf("create initdb password file: %w", err)
	}
	defer os.Remove(pwFile.Name())
	_, werr := pwFile.WriteString(pw + "\n")
	if cerr := pwFile.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return "", fmt.Errorf("write initdb password file: %w", werr)
	}
	if s.account != nil {
		if err := os.Chown(pwFile.Name(), int(s.account.uid), int(s.account.gid)); err != nil {
			return "", fmt.Errorf("give initdb password file to OS user %q: %w", s.account.name, err)
		}
	}

	logFile, offset, err := s.openLog()
	if err != nil {
		return "", err
	}
	defer logFile.Close()

	cmd := exec.CommandContext(ctx, filepath.Join(s.binDir, "initdb"),
		"-D", s.dataDir,
		"-U", superuser,
		"--auth=scram-sha-256",
		"--pwfile="+pwFile.Name(),
		"--encoding=UTF8",
		"--locale=C",
		// Checksums make silent storage corruption visible instead of
		// letting it spread into backups; they cost little CPU.
		"--data-checksums",
		"--no-instructions",
	)
	// SIGINT rather than the default SIGKILL lets initdb remove the
	// half-written cluster, so the next start can retry from scratch.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGINT) }
	cmd.WaitDelay = 30 * time.Second
	cmd.Dir = s.dataDir
	cmd.Env = childEnv()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = childSysProcAttr(s.account)
	if err := startOnStableThread(cmd); err != nil {
		return "", fmt.Errorf("start initdb: %w", err)
	}
	if err := cmd.Wait(); err != nil {
		return "", fmt.Errorf("initdb for %s failed: %w; last lines of %s:\n%s",
			s.dataDir, err, s.logPath, logTail(s.logPath, offset))
	}
	s.log.Info("initialized PostgreSQL data directory")
	return pw, nil
}

// ensureDatabase creates Cairn's database. initdb only creates "postgres",
// and running CREATE DATABASE on every start is cheaper than tracking
// whether a previous start got that far.
func (s *Server) ensureDatabase(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, s.AdminURL("postgres"))
	if err != nil {
		return fmt.Errorf("connect to create database %q: %w", appDB, err)
	}
	defer conn.Close(context.Background())
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", appDB).Scan(&exists); err != nil {
		return fmt.Errorf("check whether database %q exists: %w", appDB, err)
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{appDB}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // duplicate_database: lost a harmless race
		return nil
	}
	if err != nil {
		return fmt.Errorf("create database %q: %w", appDB, err)
	}
	s.log.Info("created database", "database", appDB)
	return nil
}
