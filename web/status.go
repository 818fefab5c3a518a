package web

import (
	"context"
	"time"
)

// Status is what the operator console and GET /api/v1/status show: one
// snapshot of the process, gathered on demand so it is never stale.
type Status struct {
	Version string      `json:"version"`
	Modules []string    `json:"modules"`
	Ready   bool        `json:"ready"`
	Checks  []Check     `json:"checks"`
	Relay   RelayStatus `json:"relay"`
	// Consumers are the consumer runtime's consumers, by name.
	Consumers []ConsumerStatus `json:"consumers"`
	// Breakers are the circuit breakers around outside systems, by
	// system: "smtp" (mail over SMTP), "payment_gateway" (payments over
	// HTTP); none in mailbox mode with the simulated gateway.
	Breakers []BreakerStatus `json:"breakers"`
	Time     time.Time       `json:"time"`
	// StartedAt is when this process started; the relay's counters
	// (published, publish errors, went idle) count from then, for this
	// replica only.
	StartedAt     time.Time `json:"started_at"`
	UptimeSeconds float64   `json:"uptime_seconds"`
	// Help says what each figure means, by its JSON path ("relay.idles"),
	// for the console and for whoever reads this document.
	Help map[string]string `json:"help"`
}

// StatusHelp explains the figures of a Status; the console shows it.
var StatusHelp = map[string]string{
	"ready":                        "every readiness check passes; /readyz answers 200 then, 503 otherwise",
	"uptime_seconds":               "how long this process has run; the relay's counters count from its start",
	"relay.state":                  "leader: this replica publishes the outbox; standby: another replica does, this one takes over if it dies; stopped: shut down",
	"relay.backlog":                "events committed to the outbox and not yet published, whichever replica committed them",
	"relay.oldest_age_seconds":     "how long the oldest unpublished event has waited",
	"relay.published":              "events this replica's relay published since this process started",
	"relay.publish_errors":         "publishes that failed since this process started (each is retried; nothing is lost)",
	"relay.idles":                  "how often the relay found nothing to publish and went to sleep until the next commit (or a 2 s poll) since this process started: quiet periods, not trouble; under steady load it stays awake",
	"consumers.state":              "consuming: this replica handles the consumer's events; standing by: another replica does; paused: an outside system is down, retried slowly; failing: see the error",
	"consumers.in_flight":          "events being handled right now",
	"consumers.unconsumed_seconds": "how long no replica has been seen consuming it; over a minute makes /readyz fail",
	"breakers.state":               "closed: calls go through; open: the outside system failed 3 times in a row, calls fail at once and the consumers that need it pause; half_open: one trial call is let through",
}

// BreakerStatus is the state of the circuit breaker around one outside
// system: "closed", "half_open" or "open".
type BreakerStatus struct {
	System string `json:"system"`
	State  string `json:"state"`
}

// Check is one readiness condition and why it failed, if it did.
type Check struct {
	Name  string `json:"name"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// RelayStatus is the relay's view of the outbox as the console shows it.
type RelayStatus struct {
	State            string  `json:"state"` // "leader", "standby", "stopped"
	Backlog          int64   `json:"backlog"`
	OldestAgeSeconds float64 `json:"oldest_age_seconds"`
	Published        uint64  `json:"published"`
	PublishErrors    uint64  `json:"publish_errors"`
	Idles            uint64  `json:"idles"` // times the leader found nothing to publish and slept (see StatusHelp)
	LastError        string  `json:"last_error,omitempty"`
	// Parked counts events the relay could never publish (outbox.parked).
	Parked int64       `json:"parked"`
	Lease  LeaseStatus `json:"lease"`
}

// LeaseStatus is a lease as this process sees it: holding (with its token
// and how long the term lasts without renewal) or standing by behind the
// holder named.
type LeaseStatus struct {
	State           string  `json:"state"` // "holding", "standby", "stopped"
	Holder          string  `json:"holder,omitempty"`
	Token           int64   `json:"token,omitempty"`
	ValidForSeconds float64 `json:"valid_for_seconds,omitempty"`
	LastError       string  `json:"last_error,omitempty"`
}

// ConsumerStatus is one consumer as the console shows it (see
// outbox/consumer.Status).
type ConsumerStatus struct {
	Consumer  string `json:"consumer"`
	EventType string `json:"event_type"`
	// State: "consuming", "starting", "paused", "standing_by", "failing",
	// "stopped".
	State     string `json:"state"`
	Reason    string `json:"reason,omitempty"`
	InFlight  int    `json:"in_flight"`
	LastError string `json:"last_error,omitempty"`
	// UnconsumedSeconds is how long no replica has been seen consuming it.
	UnconsumedSeconds float64       `json:"unconsumed_seconds"`
	Lease             ConsumerLease `json:"lease"`
}

// ConsumerLease is a consumer's lease row as last read.
type ConsumerLease struct {
	Holder string `json:"holder,omitempty"`
	Token  int64  `json:"token,omitempty"`
	Live   bool   `json:"live"`
	Mine   bool   `json:"mine"`
	Note   string `json:"note,omitempty"`
}

// StatusFunc gathers a Status; the server wires it from the readiness checks
// and the relay's metrics.
type StatusFunc func(ctx context.Context) Status
