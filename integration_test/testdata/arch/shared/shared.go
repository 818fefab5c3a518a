// Package shared is not a module; it drags module c and the relay into
// whatever imports it.
package shared

import (
	"example.com/arch/modules/c"
	"example.com/arch/outbox/relay"
)

// Name uses both.
func Name() string { return c.Name() + relay.Name() }
