package app_test

import (
	"context"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/config"
	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/broker"
	"github.com/cairn-dev/cairn/testenv"
)

// CAIRN_EVENTS_MAX_AGE bounds the EVENTS stream, and only it; unset, the
// stream keeps public events for ever. CAIRN_LAKE=off builds no mover.
func TestEventsMaxAgeAndLakeOff(t *testing.T) {
	ctx := context.Background()
	a := testenv.StartApp(t, testenv.AppOptions{Config: func(c *config.Config) { c.EventsMaxAge = 2 * time.Hour; c.Lake = "off" }})
	for stream, want := range map[string]time.Duration{outbox.PublicStream: 2 * time.Hour, outbox.InternalStream: broker.InternalMaxAge} {
		s, err := a.NATS.JS.Stream(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.CachedInfo().Config.MaxAge; got != want {
			t.Errorf("%s max age %s, want %s", stream, got, want)
		}
	}
	if a.Mover() != nil {
		t.Error("CAIRN_LAKE=off built a mover")
	}
	b := testenv.StartApp(t, testenv.AppOptions{})
	s, err := b.NATS.JS.Stream(ctx, outbox.PublicStream)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.MaxAge; got != 0 || b.Mover() == nil {
		t.Errorf("defaults: EVENTS max age %s (want unbounded), mover %v", got, b.Mover())
	}
}
