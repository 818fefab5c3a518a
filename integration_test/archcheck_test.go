package integration_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// The checks below are pure functions over what go list and the files on
// disk say, so that TestArchitectureCheckerReportsViolations can prove each
// one fails on synthetic input; loading them lives in architecture_test.go.

// Rules, as named in violation messages.
const (
	ruleAllowlist       = "allowlist-acyclic"
	ruleModuleDeps      = "module-deps"
	ruleModuleAPI       = "module-api"
	ruleNoNATS          = "no-nats"
	ruleSQLSchema       = "sql-schema"
	ruleMigrationSchema = "migration-schema"
)

// archViolation is one broken rule; msg names the offending package or file.
type archViolation struct {
	rule string
	msg  string
}

func (v archViolation) String() string { return "[" + v.rule + "] " + v.msg }

// pkgInfo is the part of one `go list -json` entry the import checks read.
type pkgInfo struct {
	ImportPath string
	Imports    []string
	Deps       []string
	DepOnly    bool
	Error      *struct{ Err string }
}

// archTree is everything the checks read from one repository.
type archTree struct {
	pkgs    []pkgInfo         // go list -deps ./modules/...: the module packages and all they depend on
	modules []string          // the folder names under modules/
	files   map[string]string // module .go and .sql files and migrations/*.sql, by slash path from the root
}

// archLayout names the Go module whose modules/ tree is checked, so the checks
// run alike on Cairn and on the fixture module in testdata/arch.
type archLayout struct{ modulePath string }

// moduleOf says which module importPath belongs to, and the rest of the path
// below that module's root ("" for the root package, "internal/x" below it).
// The shared root package modules/ belongs to no module.
func (l archLayout) moduleOf(importPath string) (name, rest string, ok bool) {
	p, found := strings.CutPrefix(importPath, l.modulePath+"/modules/")
	if !found || p == "" {
		return "", "", false
	}
	name, rest, _ = strings.Cut(p, "/")
	return name, rest, true
}

// short drops the module path, so messages read "modules/mail".
func (l archLayout) short(importPath string) string {
	if p, ok := strings.CutPrefix(importPath, l.modulePath+"/"); ok {
		return p
	}
	return importPath
}

// natsSide reports whether importPath is NATS or one of the two packages that
// may use it; a module publishes through outbox.Append and nothing else.
func (l archLayout) natsSide(importPath string) bool {
	if strings.HasPrefix(importPath, "github.com/nats-io/") {
		return true
	}
	for _, p := range []string{l.modulePath + "/outbox/relay", l.modulePath + "/outbox/broker", l.modulePath + "/outbox/consumer"} {
		if importPath == p || strings.HasPrefix(importPath, p+"/") {
			return true
		}
	}
	return false
}

// checkArchitecture runs every boundary check except the allowlist's own.
func checkArchitecture(l archLayout, allowed map[string][]string, tree archTree) []archViolation {
	names := slices.Concat(tree.modules, slices.Collect(maps.Keys(allowed)))
	slices.Sort(names)
	names = slices.Compact(names)
	return slices.Concat(checkImports(l, allowed, tree.pkgs), checkSQL(names, tree.files))
}

// checkAllowlist reports every cycle in the allowlist: modules that may reach
// each other can be neither changed nor understood apart.
func checkAllowlist(allowed map[string][]string) []archViolation {
	const (
		unseen = iota
		onPath
		done
	)
	state := map[string]int{}
	var path []string
	var out []archViolation
	var visit func(m string)
	visit = func(m string) {
		state[m] = onPath
		path = append(path, m)
		for _, d := range allowed[m] {
			switch state[d] {
			case onPath:
				cycle := append(slices.Clone(path[slices.Index(path, d):]), d)
				out = append(out, archViolation{ruleAllowlist, "allowedModuleDeps has a cycle: " + strings.Join(cycle, " -> ")})
			case unseen:
				visit(d)
			}
		}
		path = path[:len(path)-1]
		state[m] = done
	}
	for _, m := range slices.Sorted(maps.Keys(allowed)) {
		if state[m] == unseen {
			visit(m)
		}
	}
	return out
}

// checkImports reports, for every package of a module: imports of modules
// its allowlist entry does not name, dependencies on modules the allowlist
// does not let it reach even indirectly, imports of anything of another
// module but its root package, and dependencies on NATS, the relay or the
// broker. The shared root package modules/ gets the NATS check only.
func checkImports(l archLayout, allowed map[string][]string, pkgs []pkgInfo) []archViolation {
	graph := map[string][]string{}
	for _, p := range pkgs {
		graph[p.ImportPath] = p.Imports
	}
	var out []archViolation
	add := func(rule, format string, args ...any) {
		out = append(out, archViolation{rule, fmt.Sprintf(format, args...)})
	}
	for _, p := range pkgs {
		self, _, isModule := l.moduleOf(p.ImportPath)
		if !isModule && p.ImportPath != l.modulePath+"/modules" {
			continue
		}
		who := l.short(p.ImportPath)
		paths := archShortestPaths(graph, p.ImportPath)
		via := func(dep string) string {
			chain := archChainTo(paths, dep)
			if len(chain) <= 2 {
				return ""
			}
			return " (via " + strings.Join(archMap(chain, l.short), " -> ") + ")"
		}
		for _, d := range p.Deps {
			if !l.natsSide(d) {
				continue
			}
			// Report where NATS comes in, not everything behind that.
			if chain := archChainTo(paths, d); len(chain) > 2 && slices.ContainsFunc(chain[1:len(chain)-1], l.natsSide) {
				continue
			}
			add(ruleNoNATS, "%s depends on %s%s: modules publish only through outbox.Append; NATS and outbox/relay, outbox/broker and outbox/consumer are the platform's", who, l.short(d), via(d))
		}
		if !isModule {
			continue
		}
		reported := map[string]bool{}
		for _, imp := range p.Imports {
			other, rest, ok := l.moduleOf(imp)
			if !ok || other == self {
				continue
			}
			if rest == "internal" || strings.HasPrefix(rest, "internal/") {
				add(ruleModuleAPI, "%s imports %s: another module's internals are never importable, allowlisted or not", who, l.short(imp))
			} else if rest != "" {
				add(ruleModuleAPI, "%s imports %s: another module is reached only through its root package modules/%s", who, l.short(imp), other)
			}
			if !slices.Contains(allowed[self], other) && !reported[other] {
				reported[other] = true
				add(ruleModuleDeps, "%s imports %s: %q not in allowedModuleDeps[%q]", who, l.short(imp), other, self)
			}
		}
		reach := allowedReach(allowed, self)
		for _, d := range p.Deps {
			other, _, ok := l.moduleOf(d)
			if !ok || other == self || reach[other] || reported[other] {
				continue
			}
			reported[other] = true
			add(ruleModuleDeps, "%s depends on %s%s: %q not reachable through allowedModuleDeps[%q]", who, l.short(d), via(d), other, self)
		}
	}
	return out
}

// allowedReach is every module that from may depend on: those its entry
// names, theirs, and so on. A module missing from the map may reach none.
func allowedReach(allowed map[string][]string, from string) map[string]bool {
	seen := map[string]bool{}
	next := slices.Clone(allowed[from])
	for len(next) > 0 {
		m := next[len(next)-1]
		next = next[:len(next)-1]
		if !seen[m] {
			seen[m] = true
			next = append(next, allowed[m]...)
		}
	}
	return seen
}

// archShortestPaths is a breadth-first search of the import graph from one
// package, giving each package reached the one it was first reached from.
func archShortestPaths(graph map[string][]string, from string) map[string]string {
	parent := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, imp := range graph[p] {
			if _, seen := parent[imp]; !seen {
				parent[imp] = p
				queue = append(queue, imp)
			}
		}
	}
	return parent
}

// archChainTo is the import chain from the search's start to dep, or nil when
// the graph does not show how dep is reached.
func archChainTo(parent map[string]string, dep string) []string {
	if _, ok := parent[dep]; !ok {
		return nil
	}
	var chain []string
	for p := dep; p != ""; p = parent[p] {
		chain = append(chain, p)
	}
	slices.Reverse(chain)
	return chain
}

// archMap applies f to each element of s.
func archMap(s []string, f func(string) string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = f(v)
	}
	return out
}

// checkSQL reports SQL that names another module's schema or the outbox's:
// in a module's .sql files and SQL-looking Go string literals, and in a
// migration whose file name names a module (00002_users.sql) or the outbox.
// modules is the set of module names; files maps slash paths to contents.
func checkSQL(modules []string, files map[string]string) []archViolation {
	schemas := append(slices.Clone(modules), "outbox")
	ref := schemaRef(schemas)
	var out []archViolation
	for _, name := range slices.Sorted(maps.Keys(files)) {
		src := files[name]
		if rest, ok := strings.CutPrefix(name, "modules/"); ok {
			owner, file, ok := strings.Cut(rest, "/")
			if !ok {
				continue // the shared root package is nobody's
			}
			switch {
			case strings.HasSuffix(file, ".sql"):
				out = append(out, findRefs(ref, owner, sqlCode(src), func(off int) string {
					return fmt.Sprintf("%s:%d", name, 1+strings.Count(src[:off], "\n"))
				}, ruleSQLSchema)...)
			case strings.HasSuffix(file, ".go"):
				out = append(out, checkGoSQL(ref, owner, name, src)...)
			}
			continue
		}
		if dir, file := path.Split(name); dir == "migrations/" && strings.HasSuffix(file, ".sql") {
			owner := migrationOwner(file, schemas)
			if owner == "" {
				continue
			}
			out = append(out, findRefs(ref, owner, sqlCode(src), func(off int) string {
				return fmt.Sprintf("%s:%d: migration of %q", name, 1+strings.Count(src[:off], "\n"), owner)
			}, ruleMigrationSchema)...)
		}
	}
	return out
}

// schemaRef matches schema-qualified names (users.accounts, "users".x) of
// the given schemas. The character before must not be a word character or
// a dot, so the "users" of a subject like events.users.created never counts.
func schemaRef(schemas []string) *regexp.Regexp {
	alts := archMap(schemas, regexp.QuoteMeta)
	return regexp.MustCompile(`(?i)(?:^|[^\w.$"])"?(` + strings.Join(alts, "|") + `)"?\.["A-Za-z_][\w"]*`)
}

// findRefs reports every reference in code to a schema other than owner's.
func findRefs(ref *regexp.Regexp, owner, code string, where func(off int) string, rule string) []archViolation {
	var out []archViolation
	for _, m := range ref.FindAllStringSubmatchIndex(code, -1) {
		schema := strings.ToLower(code[m[2]:m[3]])
		if strings.EqualFold(schema, owner) {
			continue
		}
		start := m[2]
		if start > m[0] && code[start-1] == '"' {
			start--
		}
		name := code[start:m[1]]
		why := fmt.Sprintf("%s's SQL names only schema %s", owner, owner)
		if schema == "outbox" {
			why = "modules write events with outbox.Append, never the outbox tables"
		}
		out = append(out, archViolation{rule, fmt.Sprintf("%s names %s: %s", where(m[2]), name, why)})
	}
	return out
}

// migrationOwner is the module (or "outbox") that a migration NNNNN_<name>.sql
// belongs to: the first owner named among the words of <name>, or "".
func migrationOwner(file string, owners []string) string {
	num, rest, ok := strings.Cut(strings.TrimSuffix(file, ".sql"), "_")
	if !ok || strings.Trim(num, "0123456789") != "" {
		return ""
	}
	words := "_" + rest + "_"
	best, at := "", len(words)
	for _, o := range owners {
		if i := strings.Index(words, "_"+o+"_"); i >= 0 && (i < at || i == at && len(o) > len(best)) {
			best, at = o, i
		}
	}
	return best
}

// A Go string is taken for SQL when it starts with a statement keyword in any
// case, or holds a clause keyword in upper case: prose such as "mail: handle
// users.user_registered.v1" is neither.
var (
	sqlStatement = regexp.MustCompile(`(?i)^[\s(]*(select|insert|update|delete|with|create|alter|drop|truncate|grant|revoke|copy|merge|call|lock)\b`)
	sqlClause    = regexp.MustCompile(`\b(FROM|JOIN|INTO|UPDATE|TABLE|REFERENCES|USING)\b`)
)

// checkGoSQL scans the string literals of one Go file that look like SQL.
// A + chain is read as one string, with " ? " for each operand that is not a
// literal, so that a query spliced together is still seen whole.
func checkGoSQL(ref *regexp.Regexp, owner, name, src string) []archViolation {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, parser.SkipObjectResolution)
	if err != nil {
		return []archViolation{{ruleSQLSchema, fmt.Sprintf("%s: cannot parse, so its SQL is unchecked: %v", name, err)}}
	}
	var out []archViolation
	scan := func(leaves []ast.Expr) {
		var text strings.Builder
		type part struct {
			off, line int
			raw       bool
		}
		var parts []part
		for _, e := range leaves {
			s, ok := goStringLit(e)
			if !ok {
				text.WriteString(" ? ") // stands for whatever is spliced in
				continue
			}
			lit := e.(*ast.BasicLit)
			parts = append(parts, part{text.Len(), fset.Position(lit.Pos()).Line, lit.Value[0] == '`'})
			text.WriteString(s)
		}
		code := sqlCode(text.String())
		if !sqlStatement.MatchString(code) && !sqlClause.MatchString(code) {
			return
		}
		out = append(out, findRefs(ref, owner, code, func(off int) string {
			i := len(parts) - 1
			for i > 0 && parts[i].off > off {
				i--
			}
			line := parts[i].line
			if parts[i].raw {
				line += strings.Count(code[parts[i].off:off], "\n")
			}
			return fmt.Sprintf("%s:%d", name, line)
		}, ruleSQLSchema)...)
	}
	var visit func(n ast.Node) bool
	visit = func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.ImportSpec:
			return false
		case *ast.BasicLit:
			if n.Kind == token.STRING {
				scan([]ast.Expr{n})
			}
		case *ast.BinaryExpr:
			if n.Op != token.ADD {
				return true
			}
			leaves := concatLeaves(n)
			if !slices.ContainsFunc(leaves, isGoStringLit) {
				return true
			}
			scan(leaves)
			for _, e := range leaves {
				if !isGoStringLit(e) {
					ast.Inspect(e, visit)
				}
			}
			return false
		}
		return true
	}
	ast.Inspect(f, visit)
	return out
}

// concatLeaves flattens a + chain into its operands.
func concatLeaves(e ast.Expr) []ast.Expr {
	switch e := e.(type) {
	case *ast.ParenExpr:
		return concatLeaves(e.X)
	case *ast.BinaryExpr:
		if e.Op == token.ADD {
			return append(concatLeaves(e.X), concatLeaves(e.Y)...)
		}
	}
	return []ast.Expr{e}
}

func isGoStringLit(e ast.Expr) bool {
	_, ok := goStringLit(e)
	return ok
}

// goStringLit is the value of a string literal.
func goStringLit(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

// sqlCode blanks out SQL comments and '...' constants, keeping every offset
// and newline, so that only identifiers are left to match: an event name
// such as 'users.user_registered.v1' inside a query is data, not a schema.
func sqlCode(s string) string {
	b := []byte(s)
	blank := func(from, to int) int {
		to = min(to, len(b))
		for i := from; i < to; i++ {
			if b[i] != '\n' {
				b[i] = ' '
			}
		}
		return to
	}
	for i := 0; i < len(b); {
		switch {
		case strings.HasPrefix(s[i:], "--"):
			end := strings.IndexByte(s[i:], '\n')
			if end < 0 {
				end = len(s) - i
			}
			i = blank(i, i+end)
		case strings.HasPrefix(s[i:], "/*"):
			end := strings.Index(s[i+2:], "*/")
			if end < 0 {
				end = len(s)
			}
			i = blank(i, i+2+end+2)
		case b[i] == '\'':
			j := i + 1
			for j < len(b) && (b[j] != '\'' || j+1 < len(b) && b[j+1] == '\'') {
				if b[j] == '\'' {
					j++ // '' is a quote inside the constant
				}
				j++
			}
			i = blank(i, j+1)
		default:
			i++
		}
	}
	return string(b)
}
