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

// checkSQL reports SQL that names another module's schema or the outbox's:
// in a module's .sql files (its migrations among them) and SQL-looking Go
// string literals, and any module's schema in the platform's migrations
// (migrations/*.sql), which must stay the platform's own.
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
			out = append(out, findRefs(ref, "outbox", sqlCode(src), func(off int) string {
				return fmt.Sprintf("%s:%d: platform migration", name, 1+strings.Count(src[:off], "\n"))
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
		switch {
		case rule == ruleMigrationSchema:
			why = fmt.Sprintf("the platform's migrations name no module's schema; %s's migrations live in modules/%s/migrations", schema, schema)
		case schema == "outbox":
			why = "modules write events with outbox.Append, never the outbox tables"
		}
		out = append(out, archViolation{rule, fmt.Sprintf("%s names %s: %s", where(m[2]), name, why)})
	}
	return out
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
