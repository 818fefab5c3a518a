package app

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cairn-dev/cairn/outbox/consumer"
	"github.com/cairn-dev/cairn/outbox/relay"
	"github.com/cairn-dev/cairn/telemetry"
	"github.com/cairn-dev/cairn/web"
)

// checkers are the readiness conditions /readyz and the console report.
func (a *App) checkers() []web.Checker {
	return []web.Checker{
		{Name: "database", Check: func(ctx context.Context) error { return a.infra.pool.Ping(ctx) }},
		{Name: "migrations", Check: func(ctx context.Context) error {
			pending, err := a.migrator.HasPending(ctx)
			if err == nil && pending {
				err = errors.New("migrations are pending")
			}
			return err
		}},
		{Name: "nats", Check: func(context.Context) error {
			if s := a.infra.nc.Status(); s != nats.CONNECTED {
				return fmt.Errorf("connection is %s", s)
			}
			return nil
		}},
		{Name: "relay", Check: func(context.Context) error {
			if s := a.relay.State(); s != relay.Leader && s != relay.Standby {
				return fmt.Errorf("relay is %s (lease: %s)", s, a.relay.Lease().State)
			}
			return nil
		}},
		{Name: "consumers", Check: func(context.Context) error { return a.consumers.Ready() }},
	}
}

// readyDetail is what /readyz shows beyond its checks: the relay's lease
// and each consumer's state, read from memory.
func (a *App) readyDetail() (web.ReadyRelay, []web.ConsumerStatus) {
	l := a.relay.Lease()
	return web.ReadyRelay{State: string(a.relay.State()), Lease: web.LeaseStatus{State: string(l.State), Holder: l.Holder,
		Token: l.Token, ValidForSeconds: l.ValidFor.Seconds(), LastError: l.LastError}}, consumerStatus(a.consumers.Status())
}

// statusFunc gathers what the operator console shows.
func (a *App) statusFunc(checkers []web.Checker) web.StatusFunc {
	started := time.Now().UTC() // with the relay, whose counters start at zero
	return func(ctx context.Context) web.Status {
		ready, checks := web.RunChecks(ctx, checkers)
		m, err := a.relay.Metrics(ctx)
		rs := web.RelayStatus{
			State: string(m.State), Backlog: m.Backlog, OldestAgeSeconds: m.OldestAgeSeconds,
			Published: m.Published, PublishErrors: m.PublishErrors, Idles: m.Idles, LastError: m.LastError,
			Parked: m.Parked,
			Lease: web.LeaseStatus{State: string(m.Lease.State), Holder: m.Lease.Holder, Token: m.Lease.Token,
				ValidForSeconds: m.Lease.ValidFor.Seconds(), LastError: m.Lease.LastError},
		}
		if err != nil && rs.LastError == "" {
			rs.LastError = err.Error()
		}
		names := a.names
		if names == nil {
			names = []string{}
		}
		return web.Status{Version: a.version, Modules: names, Ready: ready, Checks: checks, Relay: rs,
			Consumers: consumerStatus(a.consumers.Status()), Breakers: breakerStatus(a.breakers()), Time: time.Now().UTC(),
			StartedAt: started, UptimeSeconds: time.Since(started).Seconds(), Help: web.StatusHelp}
	}
}

// consumerStatus maps the consumer runtime's status to the console's.
func consumerStatus(all []consumer.Status) []web.ConsumerStatus {
	out := make([]web.ConsumerStatus, 0, len(all))
	for _, s := range all {
		out = append(out, web.ConsumerStatus{
			Consumer: s.Consumer, EventType: s.EventType, State: string(s.State), Reason: s.Reason,
			InFlight: s.InFlight, LastError: s.LastError, UnconsumedSeconds: s.Unconsumed.Seconds(),
			Lease: web.ConsumerLease{Holder: s.Lease.Holder, Token: s.Lease.Token, Live: s.Lease.Live, Mine: s.Lease.Mine, Note: s.Lease.Note},
		})
	}
	return out
}

// breakerStatus maps the modules' breakers to the console's, by system.
func breakerStatus(all []telemetry.Breaker) []web.BreakerStatus {
	out := make([]web.BreakerStatus, 0, len(all))
	for _, b := range all {
		out = append(out, web.BreakerStatus{System: b.System, State: b.State})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].System < out[j].System })
	return out
}

// breakerModule is a module that calls outside systems through circuit
// breakers: Breakers reports each one's state by system
// ("closed", "half_open", "open").
type breakerModule interface {
	Breakers() map[string]string
}

// breakers gathers the breakers of every module that has some.
func (a *App) breakers() []telemetry.Breaker {
	var out []telemetry.Breaker
	for _, name := range a.names {
		if b, ok := a.built[name].(breakerModule); ok {
			for system, state := range b.Breakers() {
				out = append(out, telemetry.Breaker{System: system, State: state})
			}
		}
	}
	return out
}
