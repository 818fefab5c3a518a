package integration_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// allowedModuleDeps is the policy: which modules each module's packages may
// import (modules/<name>, its root package, and nothing below it). A module
// may also depend indirectly on whatever the modules it names may reach. A
// module that is not in the map may depend on no module at all. Every module
// may import the shared root package modules/, and none may import NATS,
// outbox/relay, outbox/broker or outbox/consumer. The map must stay acyclic. Widen it only as
// a design decision, never to make a build pass.
//
// A module that commands another (orders' fulfilment saga commands
// inventory and payments) imports the receiver's root package for the
// command's contract: the command is an internal event the receiver
// declares. The receiver never imports the sender, and a module that only
// reacts to another's events (customers to orders, choreography) names
// them with outbox.Named instead of importing.
var allowedModuleDeps = map[string][]string{
	"users":     {},
	"mail":      {"users"},
	"ledger":    {},
	"customers": {},
	"inventory": {},
	"payments":  {},
	"orders":    {"inventory", "payments"},
	"reporting": {},
}

func TestArchitectureAllowlistIsAcyclic(t *testing.T) {
	for _, v := range checkAllowlist(allowedModuleDeps) {
		t.Error(v)
	}
}

// TestArchitectureModuleBoundaries checks Cairn itself: module imports
// against allowedModuleDeps, no NATS in any module, no module SQL (its
// migrations in modules/<name>/migrations included) naming another module's
// schema or the outbox's, and no platform migration naming a module's.
func TestArchitectureModuleBoundaries(t *testing.T) {
	t.Parallel()
	root := mustArchRepoRoot(t)
	l := archLayout{mustArchModulePath(t, root)}
	tree := mustLoadArchTree(t, root, l.modulePath)
	modulePkgs := 0
	for _, p := range tree.pkgs {
		if _, _, ok := l.moduleOf(p.ImportPath); !ok {
			continue
		}
		modulePkgs++
		if p.Error != nil {
			t.Errorf("go list cannot load %s, so its imports are not fully checked: %s", l.short(p.ImportPath), p.Error.Err)
		}
	}
	if modulePkgs == 0 {
		t.Logf("./modules/... holds no module package yet: no imports to check; SQL checks ran over %d files", len(tree.files))
	}
	for _, v := range checkArchitecture(l, allowedModuleDeps, tree) {
		t.Error(v)
	}
}

// TestArchitectureCheckerFixtureModule runs the whole pipeline, go list
// included, on the module in testdata/arch, whose module a breaks each rule
// once, and expects exactly those breaks to be reported.
func TestArchitectureCheckerFixtureModule(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	if err := os.CopyFS(root, os.DirFS(filepath.Join("testdata", "arch"))); err != nil {
		t.Fatalf("copy fixture: %v", err)
	}
	l := archLayout{mustArchModulePath(t, root)}
	tree := mustLoadArchTree(t, root, l.modulePath)
	allowed := map[string][]string{"a": {}, "b": {}, "c": {}}
	assertArchViolations(t, checkArchitecture(l, allowed, tree),
		`[module-deps] modules/a imports modules/b: "b" not in allowedModuleDeps["a"]`,
		`[module-api] modules/a imports modules/b/internal/x: another module's internals`,
		`[module-deps] modules/a depends on modules/c (via modules/a -> shared -> modules/c): "c" not reachable`,
		`[no-nats] modules/a depends on outbox/relay (via modules/a -> shared -> outbox/relay)`,
		`[sql-schema] modules/a/schema.sql:1 names c.stuff`,
		`[sql-schema] modules/a/store.go:5 names b.things`,
		`[sql-schema] modules/a/store.go:8 names outbox.events`,
		`[sql-schema] modules/a/migrations/00001_a.sql:4 names b.things`,
		`[migration-schema] migrations/00002_outbox_cleanup.sql:3: platform migration names a.widgets`,
	)
}

// assertArchViolations fails unless every want is a substring of its own
// violation and nothing else was reported.
func assertArchViolations(t *testing.T, got []archViolation, want ...string) {
	t.Helper()
	for _, v := range got {
		t.Log("reported:", v)
	}
	left := slices.Clone(got)
	for _, w := range want {
		i := slices.IndexFunc(left, func(v archViolation) bool { return strings.Contains(v.String(), w) })
		if i < 0 {
			t.Errorf("not reported: %s", w)
			continue
		}
		left = slices.Delete(left, i, i+1)
	}
	for _, v := range left {
		t.Errorf("reported but not expected: %s", v)
	}
}

// mustLoadArchTree is loadArchTree, failing the test on error.
func mustLoadArchTree(t *testing.T, root, modulePath string) archTree {
	t.Helper()
	tree, err := loadArchTree(root, modulePath)
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

// loadArchTree reads what the checks need from the Go module at root whose path
// is modulePath: `go list -deps` of ./modules/... (each matched package's
// direct Imports and all its Deps, and the import graph behind them, which
// explains transitive violations), the folders under modules/, and the
// files to scan for SQL. A ./modules/... that matches nothing is not an
// error. GOWORK is off so a developer's workspace cannot change the answer.
func loadArchTree(root, modulePath string) (archTree, error) {
	cmd := exec.Command("go", "list", "-e", "-deps", "-json=ImportPath,Imports,Deps,DepOnly,Error", "./modules/...")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOWORK=off")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return archTree{}, fmt.Errorf("go list ./modules/... in %s: %v\n%s", root, err, stderr.Bytes())
	}
	tree := archTree{files: map[string]string{}}
	for dec := json.NewDecoder(bytes.NewReader(out)); dec.More(); {
		var p pkgInfo
		if err := dec.Decode(&p); err != nil {
			return archTree{}, fmt.Errorf("go list ./modules/... in %s: decode: %w", root, err)
		}
		if !p.DepOnly && p.ImportPath != modulePath+"/modules" && !strings.HasPrefix(p.ImportPath, modulePath+"/modules/") {
			return archTree{}, fmt.Errorf("go list ./modules/... in %s matched %s, outside %s/modules: wrong module path?", root, p.ImportPath, modulePath)
		}
		tree.pkgs = append(tree.pkgs, p)
	}
	entries, err := os.ReadDir(filepath.Join(root, "modules"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return archTree{}, err
	}
	for _, e := range entries {
		if e.IsDir() && !goIgnoredDir(e.Name()) {
			tree.modules = append(tree.modules, e.Name())
		}
	}
	read := func(p string) error {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		tree.files[filepath.ToSlash(rel)] = string(b)
		return err
	}
	for _, m := range tree.modules {
		dir := filepath.Join(root, "modules", m)
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			switch {
			case err != nil:
				return err
			case d.IsDir() && p != dir && goIgnoredDir(d.Name()):
				return filepath.SkipDir
			case !d.IsDir() && (strings.HasSuffix(p, ".go") || strings.HasSuffix(p, ".sql")):
				return read(p)
			}
			return nil
		})
		if err != nil {
			return archTree{}, err
		}
	}
	migrations, err := filepath.Glob(filepath.Join(root, "migrations", "*.sql"))
	if err != nil {
		return archTree{}, err
	}
	for _, p := range migrations {
		if err := read(p); err != nil {
			return archTree{}, err
		}
	}
	return tree, nil
}

// goIgnoredDir reports whether the go tool ignores a folder of this name.
func goIgnoredDir(name string) bool {
	return name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")
}

// mustArchRepoRoot is the folder holding go.mod, found by walking up from the
// test's working directory.
func mustArchRepoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's working directory")
		}
		dir = parent
	}
}

// mustArchModulePath reads the module path from root/go.mod, so that a renamed
// module cannot make every import check silently match nothing.
func mustArchModulePath(t *testing.T, root string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for s := bufio.NewScanner(bytes.NewReader(b)); s.Scan(); {
		if p, ok := strings.CutPrefix(strings.TrimSpace(s.Text()), "module "); ok {
			p = strings.TrimSpace(p)
			if u, err := strconv.Unquote(p); err == nil {
				p = u
			}
			return p
		}
	}
	t.Fatalf("%s/go.mod has no module line", root)
	return ""
}

// TestArchitectureCheckerReportsViolations proves each check fails: every
// case feeds one kind of break, as go list and the files would show it, and
// expects exactly the violations listed; the clean case expects none.
func TestArchitectureCheckerReportsViolations(t *testing.T) {
	l := archLayout{"example.com/x"}
	policy := map[string][]string{"a": {}, "b": {}, "mail": {"users"}, "users": {"ledger"}, "ledger": {}}
	cases := []struct {
		name    string
		allowed map[string][]string // policy if nil
		imports map[string][]string // package -> its imports; paths without a dot are under example.com/x
		files   map[string]string
		want    []string
	}{{
		name: "clean",
		imports: map[string][]string{
			"modules/mail":                 {"modules", "modules/users", "outbox"},
			"modules/users":                {"modules", "modules/users/internal/store", "modules/ledger", "outbox"},
			"modules/users/internal/store": {"github.com/jackc/pgx/v5"},
			"modules/ledger":               {"outbox"},
			"outbox":                       {"github.com/jackc/pgx/v5"},
		},
		files: map[string]string{
			"modules/mail/store.go": "package mail\n\nimport \"fmt\"\n\n" +
				"const insertSent = `-- name: InsertSent :exec (never users.accounts)\n" +
				"INSERT INTO mail.sent (event_type) VALUES ('users.user_registered.v1')`\n\n" +
				"const subject = \"events.users.user_registered\"\n\n" +
				"func wrap(err error) error { return fmt.Errorf(\"mail: handle users.user_registered.v1: %w\", err) }\n",
			"modules/users/store.go":                         "package users\n\nconst q = \"SELECT id FROM users.accounts JOIN pg_catalog.pg_roles r ON true\"\n",
			"modules/mail/schema.sql":                        "/* unlike users.accounts, mail's own */ SELECT * FROM mail.sent;",
			"migrations/00001_outbox.sql":                    "CREATE TABLE outbox.events (id int);",
			"migrations/00003_inbox.sql":                     "CREATE TABLE inbox.processed (subject text); -- never users.accounts",
			"modules/users/migrations/00001_users.sql":       "CREATE TABLE users.accounts (id int);",
			"modules/mail/migrations/00001_mail.sql":         "-- mail keeps no copy of users.accounts\nCREATE TABLE mail.sent (id int);",
			"modules/mail/migrations/00002_mail_subject.sql": "ALTER TABLE mail.sent ADD COLUMN event_type text DEFAULT 'users.account_created.v1';",
		},
	}, {
		name:    "imports a module not allowlisted",
		imports: map[string][]string{"modules/a": {"modules/b"}},
		want:    []string{`[module-deps] modules/a imports modules/b: "b" not in allowedModuleDeps["a"]`},
	}, {
		name:    "a module not in the allowlist may import no module",
		imports: map[string][]string{"modules/zz/internal/q": {"modules/users"}},
		want:    []string{`[module-deps] modules/zz/internal/q imports modules/users: "users" not in allowedModuleDeps["zz"]`},
	}, {
		name:    "depends on a module not allowlisted through a non-module package",
		imports: map[string][]string{"modules/a": {"shared"}, "shared": {"modules/b"}},
		want:    []string{`[module-deps] modules/a depends on modules/b (via modules/a -> shared -> modules/b): "b" not reachable through allowedModuleDeps["a"]`},
	}, {
		name:    "imports NATS",
		imports: map[string][]string{"modules/a": {"github.com/nats-io/nats.go"}},
		want:    []string{`[no-nats] modules/a depends on github.com/nats-io/nats.go: modules publish only through outbox.Append`},
	}, {
		name: "depends on the relay, reported where NATS comes in",
		imports: map[string][]string{
			"modules/a":                            {"shared"},
			"shared":                               {"outbox/relay"},
			"outbox/relay":                         {"github.com/nats-io/nats.go/jetstream"},
			"github.com/nats-io/nats.go/jetstream": {"github.com/nats-io/nats.go"},
		},
		want: []string{`[no-nats] modules/a depends on outbox/relay (via modules/a -> shared -> outbox/relay)`},
	}, {
		name:    "imports the broker",
		imports: map[string][]string{"modules/a": {"outbox/broker"}},
		want:    []string{`[no-nats] modules/a depends on outbox/broker:`},
	}, {
		name:    "the shared root package imports NATS",
		imports: map[string][]string{"modules": {"github.com/nats-io/nats.go"}},
		want:    []string{`[no-nats] modules depends on github.com/nats-io/nats.go`},
	}, {
		name:    "imports another module's internals, allowlisted",
		allowed: map[string][]string{"a": {"b"}},
		imports: map[string][]string{"modules/a": {"modules/b/internal/x"}},
		want:    []string{`[module-api] modules/a imports modules/b/internal/x: another module's internals are never importable`},
	}, {
		name:    "imports another module's internals, not allowlisted",
		imports: map[string][]string{"modules/a": {"modules/b/internal/x"}},
		want: []string{
			`[module-api] modules/a imports modules/b/internal/x: another module's internals`,
			`[module-deps] modules/a imports modules/b/internal/x: "b" not in allowedModuleDeps["a"]`,
		},
	}, {
		name:    "imports a package of another module below its root",
		allowed: map[string][]string{"a": {"b"}},
		imports: map[string][]string{"modules/a": {"modules/b/api"}},
		want:    []string{`[module-api] modules/a imports modules/b/api: another module is reached only through its root package modules/b`},
	}, {
		name:  "Go string names another module's table",
		files: map[string]string{"modules/a/store.go": "package a\n\nconst q = \"SELECT * FROM b.accounts\"\n"},
		want:  []string{`[sql-schema] modules/a/store.go:3 names b.accounts: a's SQL names only schema a`},
	}, {
		name:  "raw Go string, lower case, quoted schema",
		files: map[string]string{"modules/a/store.go": "package a\n\nconst q = `\nselect id\n  from \"b\".accounts`\n"},
		want:  []string{`[sql-schema] modules/a/store.go:5 names "b".accounts`},
	}, {
		name:  "Go strings spliced with +",
		files: map[string]string{"modules/a/store.go": "package a\n\nfunc q(cols string) string {\n\treturn \"SELECT \" + cols +\n\t\t\" FROM b.accounts\"\n}\n"},
		want:  []string{`[sql-schema] modules/a/store.go:5 names b.accounts`},
	}, {
		name:  "Go string names the outbox table",
		files: map[string]string{"modules/a/store.go": "package a\n\nconst q = \"INSERT INTO outbox.events (subject) VALUES ($1)\"\n"},
		want:  []string{`[sql-schema] modules/a/store.go:3 names outbox.events: modules write events with outbox.Append, never the outbox tables`},
	}, {
		name:  "module .sql file names another module's table",
		files: map[string]string{"modules/a/queries/report.sql": "-- name: Report\nSELECT count(*) FROM b.accounts;\n"},
		want:  []string{`[sql-schema] modules/a/queries/report.sql:2 names b.accounts`},
	}, {
		name:  "module's Go file does not parse",
		files: map[string]string{"modules/a/broken.go": "package a\nconst q = "},
		want:  []string{`[sql-schema] modules/a/broken.go: cannot parse`},
	}, {
		name:  "module's migration names another module's table",
		files: map[string]string{"modules/a/migrations/00007_a.sql": "CREATE TABLE a.x (user_id bigint REFERENCES b.users (id));"},
		want:  []string{`[sql-schema] modules/a/migrations/00007_a.sql:1 names b.users: a's SQL names only schema a`},
	}, {
		name:  "module's migration names the outbox",
		files: map[string]string{"modules/a/migrations/00008_add_index.sql": "\nCREATE INDEX ON outbox.events (subject);"},
		want:  []string{`[sql-schema] modules/a/migrations/00008_add_index.sql:2 names outbox.events: modules write events with outbox.Append`},
	}, {
		name:  "platform migration names a module's table",
		files: map[string]string{"migrations/00009_outbox_cleanup.sql": "DELETE FROM users.accounts;"},
		want:  []string{`[migration-schema] migrations/00009_outbox_cleanup.sql:1: platform migration names users.accounts: the platform's migrations name no module's schema`},
	}, {
		name:  "a module's migration left among the platform's",
		files: map[string]string{"migrations/00011_ledger_idempotency_expiry.sql": "-- +goose Up\nCREATE INDEX ON ledger.idempotency_keys (created_at);"},
		want:  []string{`[migration-schema] migrations/00011_ledger_idempotency_expiry.sql:2: platform migration names ledger.idempotency_keys: the platform's migrations name no module's schema; ledger's migrations live in modules/ledger/migrations`},
	}, {
		name: "declares an event under another module's name",
		files: map[string]string{"modules/a/events.go": "package a\n\nimport \"x/outbox\"\n\nvar (\n\tOwn   = outbox.Declare[int](outbox.EventSpec{Type: \"a.made.v1\"})\n" +
			"\tTheirs = outbox.Declare[int](outbox.EventSpec{Type: \"b.made.v1\", Visibility: outbox.Public})\n\tDerived = outbox.Declare[int](outbox.EventSpec{Type: name()})\n)\n"},
		want: []string{
			`[event-name] modules/a/events.go:7 declares b.made.v1: a's event types are named a.<event_name>.v<N>`,
			`[event-name] modules/a/events.go:8 declares : a's event types are named a.<event_name>.v<N>, as explicit constants`,
		},
	}, {
		name:    "allowlist cycle",
		allowed: map[string][]string{"a": {"b"}, "b": {"c"}, "c": {"a"}},
		want:    []string{`[allowlist-acyclic] allowedModuleDeps has a cycle: a -> b -> c -> a`},
	}, {
		name:    "allowlist names a module itself",
		allowed: map[string][]string{"a": {"a"}},
		want:    []string{`[allowlist-acyclic] allowedModuleDeps has a cycle: a -> a`},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			allowed := c.allowed
			if allowed == nil {
				allowed = policy
			}
			tree := archTree{pkgs: goListOf(l, c.imports), files: c.files}
			got := append(checkAllowlist(allowed), checkArchitecture(l, allowed, tree)...)
			assertArchViolations(t, got, c.want...)
		})
	}
}

// goListOf is what go list -deps would say about an import graph.
func goListOf(l archLayout, imports map[string][]string) []pkgInfo {
	full := func(p string) string {
		if strings.Contains(strings.Split(p, "/")[0], ".") {
			return p
		}
		return l.modulePath + "/" + p
	}
	graph := map[string][]string{}
	for p, imps := range imports {
		graph[full(p)] = archMap(imps, full)
		for _, imp := range imps {
			if _, ok := imports[imp]; !ok {
				graph[full(imp)] = nil
			}
		}
	}
	var pkgs []pkgInfo
	for _, p := range slices.Sorted(maps.Keys(graph)) {
		var deps []string
		for d := range archShortestPaths(graph, p) {
			if d != p {
				deps = append(deps, d)
			}
		}
		slices.Sort(deps)
		pkgs = append(pkgs, pkgInfo{ImportPath: p, Imports: graph[p], Deps: deps})
	}
	return pkgs
}
