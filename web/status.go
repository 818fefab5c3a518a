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
	Time      time.Time        `json:"time"`
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
	Idles            uint64  `json:"idles"` // times the leader found nothing to publish and slept
	LastError        string  `json:"last_error,omitempty"`
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
