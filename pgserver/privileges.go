package pgserver

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// osAccount is the unprivileged account the server runs as when Cairn itself
// runs as root (typical in containers): postgres refuses to start as root
// because a compromised superuser session could then own the whole machine.
type osAccount struct {
	name     string
	uid, gid uint32
}

// serverAccount returns nil when no account switch is needed, i.e. when we
// are not root and the server can simply run as ourselves.
func serverAccount() (*osAccount, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	// The Debian package creates "postgres"; "nobody" is the fallback that
	// exists on virtually every system (e.g. bare containers that only
	// installed the binaries).
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			var unknown user.UnknownUserError
			if errors.As(err, &unknown) {
				continue
			}
			return nil, fmt.Errorf("look up OS user %q: %w", name, err)
		}
		uid, err := strconv.ParseUint(u.Uid, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("parse uid %q of OS user %q: %w", u.Uid, name, err)
		}
		gid, err := strconv.ParseUint(u.Gid, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("parse gid %q of OS user %q: %w", u.Gid, name, err)
		}
		if uid == 0 {
			continue // an alias of root would be refused by postgres anyway
		}
		return &osAccount{name: name, uid: uint32(uid), gid: uint32(gid)}, nil
	}
	return nil, errors.New("running as root, but PostgreSQL refuses to run as root and neither an OS user " +
		"\"postgres\" nor \"nobody\" exists: create one (useradd --system postgres) or run Cairn as an unprivileged user")
}

// credential drops supplementary groups on purpose (Groups is empty): the
// server should not inherit root's groups, and checkTraversable reasons about
// the primary group only.
func (a *osAccount) credential() *syscall.Credential {
	if a == nil {
		return nil
	}
	return &syscall.Credential{Uid: a.uid, Gid: a.gid}
}

// checkTraversable reports an existing parent directory of dir that the
// account cannot enter. We refuse instead of chmod'ing it because the parent
// may be a system or home directory whose permissions the operator chose
// deliberately. Missing parents are fine: mkdirParents creates them enterable.
func checkTraversable(dir string, a *osAccount) error {
	if a == nil {
		return nil
	}
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if errors.Is(err, fs.ErrNotExist) {
			if d == filepath.Dir(d) {
				return nil
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("check access of OS user %q to %s: %w", a.name, d, err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("check access of OS user %q to %s: no ownership information", a.name, d)
		}
		var bit fs.FileMode = 0o001
		switch {
		case st.Uid == a.uid:
			bit = 0o100
		case st.Gid == a.gid:
			bit = 0o010
		}
		if fi.Mode().Perm()&bit == 0 {
			return fmt.Errorf("PostgreSQL cannot run as root, so it runs as OS user %q, which cannot enter %s "+
				"(mode %v, owner uid %d): allow it (e.g. chmod o+x %s) or put the data directory %s somewhere else",
				a.name, d, fi.Mode().Perm(), st.Uid, d, dir)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// chownTree hands the whole data directory to the account. It walks every
// start, not just the first, because a data directory restored from a backup
// by root would otherwise make postgres fail on the first foreign file.
func chownTree(dir string, a *osAccount) error {
	if a == nil {
		return nil
	}
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("walk %s: %w", path, err)
		}
		fi, err := d.Info()
		if err != nil {
			return fmt.Errorf("stat %s: %w", path, err)
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid == a.uid && st.Gid == a.gid {
			return nil
		}
		if err := os.Lchown(path, int(a.uid), int(a.gid)); err != nil {
			return fmt.Errorf("give %s to OS user %q: %w", path, a.name, err)
		}
		return nil
	})
}

// mkdirParents creates the missing parents of dir with mode 0755 regardless
// of the umask: when the server runs as another account it must be able to
// enter them, and a restrictive umask (077) would otherwise lock it out of
// directories we created ourselves. Nothing sensitive is exposed, since the
// data directory and its sibling files are private.
func mkdirParents(dir string) error {
	parent := filepath.Dir(dir)
	if _, err := os.Stat(parent); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("stat %s: %w", parent, err)
	}
	if err := mkdirParents(parent); err != nil {
		return err
	}
	if err := os.Mkdir(parent, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create %s: %w", parent, err)
	}
	if err := os.Chmod(parent, 0o755); err != nil {
		return fmt.Errorf("make %s enterable: %w", parent, err)
	}
	return nil
}
