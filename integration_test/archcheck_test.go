package integration_test

import (
	"fmt"
	"maps"
	"slices"
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
	ruleEventName       = "event-name"
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
	return slices.Concat(checkImports(l, allowed, tree.pkgs), checkSQL(names, tree.files), checkEventNames(tree.files))
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
