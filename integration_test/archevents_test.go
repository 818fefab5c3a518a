package integration_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"slices"
	"strings"
)

// checkEventNames reports an event type a module declares under another
// module's name: in modules/<m>/, every outbox.EventSpec literal's Type
// must start with "<m>.", since a module owns subjects events.<m>.* and
// internal.<m>.* and nothing else. (Files that do not parse are reported
// by checkSQL.)
func checkEventNames(files map[string]string) []archViolation {
	var out []archViolation
	for _, name := range slices.Sorted(maps.Keys(files)) {
		rest, ok := strings.CutPrefix(name, "modules/")
		owner, file, isModule := strings.Cut(rest, "/")
		if !ok || !isModule || !strings.HasSuffix(file, ".go") {
			continue
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, name, files[name], parser.SkipObjectResolution)
		if err != nil {
			continue
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.CompositeLit)
			if !ok {
				return true
			}
			if sel, isSel := lit.Type.(*ast.SelectorExpr); !isSel || sel.Sel.Name != "EventSpec" {
				return true
			}
			for _, el := range lit.Elts {
				kv, ok := el.(*ast.KeyValueExpr)
				if !ok {
					continue
				}
				if key, isIdent := kv.Key.(*ast.Ident); !isIdent || key.Name != "Type" {
					continue
				}
				typ, isString := goStringLit(kv.Value)
				if !isString || !strings.HasPrefix(typ, owner+".") {
					out = append(out, archViolation{ruleEventName, fmt.Sprintf("%s:%d declares %s: %s's event types are named %s.<event_name>.v<N>, as explicit constants",
						name, fset.Position(kv.Value.Pos()).Line, typ, owner, owner)})
				}
			}
			return true
		})
	}
	return out
}
