package pgserver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ErrBinariesNotFound is wrapped by FindBinDir (and Start) when no usable
// PostgreSQL server installation exists, so callers can tell "install
// PostgreSQL" apart from every other startup failure.
var ErrBinariesNotFound = errors.New("PostgreSQL server binaries not found")

// searchRoots are the directories whose <version>/bin subdirectories are
// scanned as a last resort. It is a variable so tests can point it at a tree
// that holds no installation.
var searchRoots = []string{"/usr/lib/postgresql"}

// FindBinDir returns the directory holding the postgres and initdb binaries.
//
// Debian and Ubuntu do not put the server binaries on PATH (only the
// pg_wrapper client tools), which is why pg_config and the versioned
// /usr/lib/postgresql/<version>/bin directories are consulted as well.
func FindBinDir() (string, error) {
	if dir, ok := binDirFromPath(); ok {
		return dir, nil
	}
	if dir, ok := binDirFromPgConfig(); ok {
		return dir, nil
	}
	for _, root := range searchRoots {
		if dir, ok := highestVersionBinDir(root); ok {
			return dir, nil
		}
	}
	globs := make([]string, len(searchRoots))
	for i, root := range searchRoots {
		globs[i] = filepath.Join(root, "*", "bin")
	}
	return "", fmt.Errorf("%w (looked on PATH, via pg_config and under %s): "+
		"install the Debian package \"postgresql\" (apt-get install postgresql) "+
		"or set CAIRN_DATABASE_URL to use your own server",
		ErrBinariesNotFound, strings.Join(globs, ", "))
}

// binDirFromPath resolves symlinks because initdb looks for postgres next to
// its real location, and a PATH entry such as /usr/local/bin often holds only
// a symlink to initdb.
func binDirFromPath() (string, bool) {
	p, err := exec.LookPath("initdb")
	if err != nil {
		return "", false
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", false
	}
	dir := filepath.Dir(real)
	return dir, isBinDir(dir)
}

func binDirFromPgConfig() (string, bool) {
	p, err := exec.LookPath("pg_config")
	if err != nil {
		return "", false
	}
	// pg_config is tiny; the timeout only guards against a broken wrapper
	// script hanging startup forever.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, p, "--bindir").Output()
	if err != nil {
		return "", false
	}
	// The client-only libpq-dev package ships pg_config too, so the directory
	// it names may lack the server binaries.
	dir := strings.TrimSpace(string(out))
	return dir, dir != "" && isBinDir(dir)
}

func highestVersionBinDir(root string) (string, bool) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return "", false
	}
	var versions []string
	for _, e := range entries {
		if isBinDir(filepath.Join(root, e.Name(), "bin")) {
			versions = append(versions, e.Name())
		}
	}
	if len(versions) == 0 {
		return "", false
	}
	sort.Slice(versions, func(i, j int) bool { return versionLess(versions[i], versions[j]) })
	return filepath.Join(root, versions[len(versions)-1], "bin"), true
}

// versionLess compares dotted versions numerically so that "10" sorts after
// "9.6"; names that are not numbers sort before all numeric ones.
func versionLess(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(pa) || i < len(pb); i++ {
		na, nb := -1, -1
		if i < len(pa) {
			if n, err := strconv.Atoi(pa[i]); err == nil {
				na = n
			}
		}
		if i < len(pb) {
			if n, err := strconv.Atoi(pb[i]); err == nil {
				nb = n
			}
		}
		if na != nb {
			return na < nb
		}
	}
	return a < b
}

func isBinDir(dir string) bool {
	return isExecutable(filepath.Join(dir, "postgres")) && isExecutable(filepath.Join(dir, "initdb"))
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
