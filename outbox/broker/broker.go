// Package broker owns Cairn's connection to NATS: it starts the embedded
// server when no external one is configured, connects, and declares the two
// streams every event lands in. It is the only place, with the relay, that
// knows NATS exists.
package broker

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-dev/cairn/outbox"
)

// DuplicateWindow is how long JetStream remembers a Nats-Msg-Id. It must be
// longer than the relay's longest republish horizon: a leader that dies is
// replaced within seconds, and a new leader skips what it finds already in
// the streams (see relay.reconcile), so two minutes is ample; it also bounds
// the memory JetStream spends on remembered ids.
const DuplicateWindow = 2 * time.Minute

// InternalMaxAge bounds how long internal events are kept; public events
// are kept for replay and audit. Internal events exist to hand data to
// Cairn's own consumers, secrets among them: an activation token is valid
// for 24 hours (users.ActivationTokenTTL), so after 25 hours (the hour
// covers a relay that was behind) its event is useless, and keeping it
// longer only keeps a secret at rest. The price: a Cairn consumer stopped
// for longer than that loses the internal events it had not handled (an
// activation email that late would carry an expired token anyway; the user
// asks for a new one).
const InternalMaxAge = 25 * time.Hour

// Connect dials an external NATS server or cluster (comma-separated URLs,
// credentials in the URL) and keeps reconnecting for ever: the relay backs
// off while NATS is away rather than the process dying. Replies to the
// connection, the pull deliveries of Cairn's consumers among them, go to
// subjects under InboxPrefix, which external users cannot subscribe to.
func Connect(url, name string, log *slog.Logger, opts ...nats.Option) (*nats.Conn, error) {
	base := []nats.Option{
		nats.Name(name),
		nats.CustomInboxPrefix(InboxPrefix),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		nats.RetryOnFailedConnect(false),
		// A server that stops answering without closing the socket (a
		// frozen host, a cut network) is noticed after about 6 s instead
		// of NATS's default 4 min: the relay and consumers then fail over
		// to a replica that can still reach NATS.
		nats.PingInterval(2 * time.Second),
		nats.MaxPingsOutstanding(3),
		// While disconnected, a publish (a pull request, an ack) fails at
		// once instead of waiting in a buffer: a consumer then sees that
		// it cannot reach NATS and gives its lease to a replica that can.
		nats.ReconnectBufSize(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil: we closed it
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			log.Info("nats reconnected", "url", c.ConnectedUrlRedacted())
		}),
	}
	nc, err := nats.Connect(url, append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("broker: connect to NATS: %w", err)
	}
	return nc, nil
}

// StreamConfigs returns the two streams Cairn publishes to.
func StreamConfigs(replicas int) []jetstream.StreamConfig {
	return []jetstream.StreamConfig{
		{
			Name:        outbox.PublicStream,
			Description: "Cairn public events, readable by external subscribers",
			Subjects:    []string{outbox.PublicPrefix + ">"},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			Replicas:    replicas,
			Duplicates:  DuplicateWindow,
			// The relay may publish a transaction's events as one atomic
			// batch (nats-server 2.12+).
			AllowAtomicPublish: true,
		},
		{
			Name:        outbox.InternalStream,
			Description: "Cairn internal events, for Cairn's own modules only",
			Subjects:    []string{outbox.InternalPrefix + ">"},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			Replicas:    replicas,
			Duplicates:  DuplicateWindow,
			MaxAge:      InternalMaxAge,
			// As for EVENTS.
			AllowAtomicPublish: true,
		},
	}
}

// EnsureStreams creates or updates the streams; several replicas may call it
// at once.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, replicas int) error {
	for _, cfg := range StreamConfigs(replicas) {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("broker: declare stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

// InboxPrefix is where replies to Cairn's own connections go: JetStream API
// answers, publish acks, and the pull deliveries of its consumers, internal
// events included. No external user may subscribe to it.
const InboxPrefix = "_CAIRN_INBOX"
