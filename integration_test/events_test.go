package integration_test

import "github.com/cairn-dev/cairn/outbox"

// The event types these tests append besides the modules' own; outbox.Append
// refuses undeclared ones.
var _ = func() bool {
	for _, typ := range []string{"it.drained.v1", "it.before.v1", "it.after.v1", "it.ticked.v1"} {
		outbox.Declare[map[string]int](outbox.EventSpec{Type: typ, Visibility: outbox.Public, Description: "An integration test event."})
	}
	outbox.Declare[map[string]string](outbox.EventSpec{Type: "it.visible.v1", Visibility: outbox.Public, Description: "A public test event."})
	outbox.Declare[map[string]string](outbox.EventSpec{Type: "it.token_made.v1", Visibility: outbox.Internal, Description: "An internal test event carrying a secret."})
	return true
}()
