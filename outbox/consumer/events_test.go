package consumer_test

import "github.com/cairn-dev/cairn/outbox"

// happened is the event type these tests append and consume.
var happened = outbox.Declare[map[string]int](outbox.EventSpec{
	Type: "test.happened.v1", Visibility: outbox.Public, Description: "A consumer test event.",
})
