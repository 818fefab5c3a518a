// Package a breaks every boundary rule once, on purpose:
// TestArchitectureCheckerFixtureModule expects each break to be reported.
package a

import (
	"example.com/arch/modules"
	"example.com/arch/modules/b"
	"example.com/arch/modules/b/internal/x"
	"example.com/arch/shared"
)

// Name reaches into b directly, into b's internals, and, through shared, into
// module c and the relay.
func Name(modules.Deps) string { return b.Name() + x.Name() + shared.Name() }
