package lease

import "time"

// State is what this process is doing about a lease.
type State string

// The states /readyz and the console report.
const (
	Stopped State = "stopped"
	Standby State = "standby"
	Holding State = "holding"
)

// Status is a lease as this process last saw it.
type Status struct {
	State State `json:"state"`
	// Holder and Token of the current term as last seen: this process's
	// while Holding, another's while Standby (empty if none yet).
	Holder string `json:"holder,omitempty"`
	Token  int64  `json:"token,omitempty"`
	// ValidFor is how long this process's term holds without renewal.
	ValidFor  time.Duration `json:"valid_for,omitempty"`
	LastError string        `json:"last_error,omitempty"`
}

// Status returns the lease's status now.
func (l *Lease) Status() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.status
	if s.State == Holding && l.term != nil {
		s.ValidFor = l.term.Remaining()
	}
	return s
}

func (l *Lease) setState(st State, t *Term) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.status.State = st
	l.term = t
	if t != nil {
		l.status.Holder, l.status.Token = t.Holder, t.Token
	}
}
