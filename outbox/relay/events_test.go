package relay_test

import "github.com/cairn-dev/cairn/outbox"

// The event types these tests append; outbox.Append refuses undeclared ones.
var _ = func() bool {
	for _, typ := range []string{"test.thing_happened.v1", "test.late.v1", "test.early.v1", "test.counted.v1",
		"test.tick.v1", "test.woke.v1", "test.waited.v1", "test.steady.v1", "test.behind.v1", "test.fine.v1", "test.first.v1",
		"test.keyed.v1", "test.restored.v1"} {
		outbox.Declare[testData](outbox.EventSpec{Type: typ, Visibility: outbox.Public, Description: "A relay test event."})
	}
	for _, typ := range []string{"test.secret_made.v1", "test.keyed_internal.v1", "test.restored_internal.v1"} {
		outbox.Declare[testData](outbox.EventSpec{Type: typ, Visibility: outbox.Internal, Description: "An internal relay test event."})
	}
	outbox.Declare[map[string]string](outbox.EventSpec{Type: "test.medium.v1", Visibility: outbox.Public, Description: "A relay test event with a large note."})
	return true
}()
