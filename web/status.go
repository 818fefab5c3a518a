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
	Time    time.Time   `json:"time"`
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

// StatusFunc gathers a Status; the server wires it from the readiness checks
// and the relay's metrics.
type StatusFunc func(ctx context.Context) Status
