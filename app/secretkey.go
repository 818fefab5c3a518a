package app

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/cairn-dev/cairn/config"
	"github.com/cairn-dev/cairn/outbox"
)

// secretKeyFile is where the embedded mode keeps the key that seals the
// secret fields of dead letters when CAIRN_SECRET_KEY is not set: beside
// the data it protects, never in the database.
const secretKeyFile = "secret.key"

// sealer returns what seals the secret fields of dead letters: the key in
// CAIRN_SECRET_KEY; else, with the embedded PostgreSQL (embedded: this
// process started it in the data directory), a key made on the
// first start and kept in <data dir>/secret.key (0600), so `make run`
// needs no configuration and its dead letters can be retried after a
// restart; else (a database of your own, probably several replicas) a
// random key of this process, with a warning: what it seals no other
// replica can open, nor this one after a restart. Errors: a key file that
// cannot be read, made, or holds no key.
func sealer(cfg config.Config, embedded bool, log *slog.Logger) (*outbox.Sealer, error) {
	key, err := cfg.SecretKeyBytes()
	if err != nil {
		return nil, fmt.Errorf("CAIRN_SECRET_KEY: %w", err) // Validate names it first
	}
	switch {
	case key != nil:
	case embedded:
		if key, err = embeddedSecretKey(filepath.Join(cfg.DataDir, secretKeyFile), log); err != nil {
			return nil, err
		}
	default:
		log.Warn("CAIRN_SECRET_KEY is not set: the secret fields of dead letters are sealed with a random key of this process, " +
			"so a dead letter parked here cannot be retried with its secrets on another replica or after a restart " +
			"(its handler then gets them redacted); set the same CAIRN_SECRET_KEY on every replica (openssl rand -base64 32)")
		return outbox.RandomSealer(), nil
	}
	return outbox.NewSealer(key)
}

// embeddedSecretKey reads the key file, or makes it when there is none.
// The file appears whole or not at all (written aside, then linked into
// place), so a crash never leaves a half-written key, and two processes
// starting at once end up with the same key.
func embeddedSecretKey(path string, log *slog.Logger) ([]byte, error) {
	if key, err := readSecretKey(path); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), secretKeyFile+".*")
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	defer os.Remove(tmp.Name())
	key := outbox.NewSecretKey()
	_, err = tmp.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
	if err == nil {
		err = tmp.Chmod(0o600)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("secret key: write %s: %w", tmp.Name(), err)
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, fs.ErrExist) {
		return readSecretKey(path) // another process made it first
	} else if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	log.Info("made the key that seals secrets in dead letters", "file", path)
	return key, nil
}

func readSecretKey(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	key, err := config.Config{SecretKey: string(bytes.TrimSpace(raw))}.SecretKeyBytes()
	if err != nil || key == nil {
		return nil, fmt.Errorf("secret key: %s holds no key (%v): restore it from a backup, or set CAIRN_SECRET_KEY", path, err)
	}
	return key, nil
}
