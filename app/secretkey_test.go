package app

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-dev/cairn/config"
)

// With the embedded PostgreSQL and no CAIRN_SECRET_KEY, the first start
// makes a key file (0600) in the data directory and later starts use it,
// so a dead letter sealed before a restart opens after it. With a database
// of one's own and no key, each process gets a key of its own and a
// warning that names the setting. CAIRN_SECRET_KEY wins over both.
func TestSecretKeyOfEachMode(t *testing.T) {
	raw := []byte(`{"specversion":"1.0","id":"e1","type":"users.activation_requested.v1","data":{"token":"tok-42"}}`)
	var log bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&log, nil))

	embedded := config.Default()
	embedded.DataDir = filepath.Join(t.TempDir(), "data")
	first, err := sealer(embedded, true, logger)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(filepath.Join(embedded.DataDir, secretKeyFile))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", info, err)
	}
	sealed, _ := first.SealEvent(raw)
	again, err := sealer(embedded, true, logger) // a restart
	if err != nil {
		t.Fatal(err)
	}
	if out, unopened := again.UnsealEvent(sealed); unopened != 0 || !strings.Contains(string(out), "tok-42") {
		t.Fatalf("after a restart: %s", out)
	}
	if strings.Contains(log.String(), "WARN") {
		t.Fatalf("the embedded mode warned:\n%s", log.String())
	}

	external := embedded // a database of one's own: no embedded server
	other, err := sealer(external, false, logger)
	if err != nil {
		t.Fatal(err)
	}
	if _, unopened := other.UnsealEvent(sealed); unopened != 1 {
		t.Fatal("a process without the key file opened what the embedded mode sealed")
	}
	if !strings.Contains(log.String(), "level=WARN") || !strings.Contains(log.String(), "CAIRN_SECRET_KEY") {
		t.Fatalf("no warning naming CAIRN_SECRET_KEY:\n%s", log.String())
	}

	external.SecretKey = "q0vJ0Xb4nS3tKkM0mB3fRZ6bA1p9yQeHc2s8uVwT5xE="
	a, _ := sealer(external, false, logger)
	b, _ := sealer(external, false, logger) // another replica
	sealed, _ = a.SealEvent(raw)
	if out, unopened := b.UnsealEvent(sealed); unopened != 0 || !strings.Contains(string(out), "tok-42") {
		t.Fatalf("replicas sharing CAIRN_SECRET_KEY: %s", out)
	}

	if err := os.WriteFile(filepath.Join(embedded.DataDir, secretKeyFile), []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := sealer(embedded, true, logger); err == nil || !strings.Contains(err.Error(), "CAIRN_SECRET_KEY") {
		t.Fatalf("a broken key file: %v", err)
	}
}
