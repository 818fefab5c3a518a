package outbox_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/outbox"
)

// kit.counted has three versions chained by upcasters (v1 -> v2 -> v3);
// kit.orphaned has two and no upcaster between them: the mistake the
// catalog must refuse.
type countedV1 struct {
	N int `json:"n"`
}

type countedV2 struct {
	Count int `json:"count"`
}

type countedV3 struct {
	Count int    `json:"count"`
	Unit  string `json:"unit"`
}

var (
	countedEventV1 = outbox.Declare[countedV1](outbox.EventSpec{Type: "kit.counted.v1", Visibility: outbox.Public, Description: "Counted, v1."})
	countedEventV2 = outbox.Declare[countedV2](outbox.EventSpec{Type: "kit.counted.v2", Visibility: outbox.Public, Description: "Counted, v2: n is count."})
	countedEventV3 = outbox.Declare[countedV3](outbox.EventSpec{Type: "kit.counted.v3", Visibility: outbox.Public, Description: "Counted, v3: with a unit."})
	orphanedV1     = outbox.Declare[countedV1](outbox.EventSpec{Type: "kit.orphaned.v1", Visibility: outbox.Public, Description: "Orphaned, v1."})
	orphanedV2     = outbox.Declare[countedV2](outbox.EventSpec{Type: "kit.orphaned.v2", Visibility: outbox.Public, Description: "Orphaned, v2, with no upcaster from v1."})

	_ = outbox.Upcast(countedEventV1, countedEventV2, func(data json.RawMessage) (json.RawMessage, error) {
		var v countedV1
		if err := json.Unmarshal(data, &v); err != nil {
			return nil, err
		}
		return json.Marshal(countedV2{Count: v.N})
	})
	_ = outbox.Upcast(countedEventV2, countedEventV3, func(data json.RawMessage) (json.RawMessage, error) {
		var v countedV2
		if err := json.Unmarshal(data, &v); err != nil {
			return nil, err
		}
		return json.Marshal(countedV3{Count: v.Count, Unit: "each"})
	})
)

func mentions(t *testing.T, what string, err error, want ...string) {
	t.Helper()
	for _, w := range want {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("%s: %v, want it to mention %q", what, err, w)
		}
	}
}

// A handler of the newest version reads the older ones upcast through the
// chain; one consumer with handlers for two versions of one event is
// refused at registration, naming the consumer and both versions, whichever
// comes first and however it is registered; another consumer may read
// another version.
func TestConsumerRefusesTwoVersionsOfOneEvent(t *testing.T) {
	subs := &outbox.Subscriptions{}
	if err := outbox.Handle(subs, "kit_counter", countedEventV3, noop[countedV3]); err != nil {
		t.Fatal(err)
	}
	if got := subs.All()[0].Older; !slices.Equal(got, []string{"kit.counted.v1", "kit.counted.v2"}) {
		t.Fatalf("the v3 handler reads the older versions %v, want v1 and v2", got)
	}
	out, err := outbox.UpcastData("kit.counted.v1", "kit.counted.v3", json.RawMessage(`{"n":7}`))
	if err != nil || string(out) != `{"count":7,"unit":"each"}` {
		t.Fatalf("v1 upcast to v3: %s %v", out, err)
	}

	err = outbox.Handle(subs, "kit_counter", countedEventV1, noop[countedV1])
	mentions(t, "a v1 handler beside the v3 one", err, "consumer kit_counter", "two versions of one event", "kit.counted.v3", "kit.counted.v1")
	err = subs.Add(outbox.Subscription{Consumer: "kit_counter", EventType: "kit.counted.v2", Visibility: outbox.Public,
		Handle: func(context.Context, pgx.Tx, outbox.Delivery) error { return nil }})
	mentions(t, "a raw v2 subscription beside the v3 one", err, "consumer kit_counter", "two versions of one event", "kit.counted.v2")

	first := &outbox.Subscriptions{}
	if err := outbox.Handle(first, "kit_counter", countedEventV2, noop[countedV2]); err != nil {
		t.Fatal(err)
	}
	err = outbox.Handle(first, "kit_counter", countedEventV3, noop[countedV3])
	mentions(t, "a v3 handler after the v2 one", err, "consumer kit_counter", "two versions of one event", "kit.counted.v2", "kit.counted.v3")

	if err := outbox.Handle(subs, "kit_old_counter", countedEventV1, noop[countedV1]); err != nil {
		t.Fatalf("another consumer reading v1: %v", err)
	}
	if n := len(subs.All()) + len(first.All()); n != 3 {
		t.Fatalf("%d subscriptions kept, want 3 (the refused ones not among them)", n)
	}
}

// A version with no upcaster path to the newest is refused twice: a handler
// of the newest fails at registration naming the consumer and the version
// its events could not come from, and the start-up check (CheckVersions,
// which app.New runs) names every such version and no version that has a
// path.
func TestVersionWithoutUpcasterPathIsRefused(t *testing.T) {
	_ = orphanedV1
	err := outbox.Handle(&outbox.Subscriptions{}, "kit_orphan", orphanedV2, noop[countedV2])
	mentions(t, "a handler of kit.orphaned.v2", err, "consumer kit_orphan", "kit.orphaned.v2", "kit.orphaned.v1", "no upcaster path")

	err = outbox.CheckVersions()
	mentions(t, "the start-up check", err, "kit.orphaned.v1 (newest kit.orphaned.v2)", "outbox.Upcast")
	if err != nil && strings.Contains(err.Error(), "kit.counted") {
		t.Errorf("the start-up check refuses kit.counted, whose versions all reach v3: %v", err)
	}
}
