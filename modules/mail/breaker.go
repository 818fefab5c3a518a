package mail

import "github.com/sony/gobreaker/v2"

// Breakers reports the circuit breakers the module calls outside systems
// through, by system: {"smtp": "closed" | "half_open" | "open"} when mail
// goes out over SMTP, nothing in mailbox mode. The app exports them as
// cairn_circuit_breaker_state and shows them on the console.
func (m *Module) Breakers() map[string]string {
	s, ok := m.sender.(*SMTPSender)
	if !ok {
		return nil
	}
	return map[string]string{"smtp": s.BreakerState()}
}

// BreakerState is the state of the breaker around the SMTP server.
func (s *SMTPSender) BreakerState() string {
	switch s.breaker.State() {
	case gobreaker.StateOpen:
		return "open"
	case gobreaker.StateHalfOpen:
		return "half_open"
	}
	return "closed"
}
