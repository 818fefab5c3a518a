package payments

import "github.com/sony/gobreaker/v2"

// Breakers reports the circuit breakers the module calls outside systems
// through, by system: {"payment_gateway": "closed" | "half_open" | "open"}
// when the gateway is reached over HTTP (CAIRN_PAYMENTS_URL), nothing with
// the simulated one, which never fails. The app exports them as
// cairn_circuit_breaker_state and shows them on the console, as mail's.
func (m *Module) Breakers() map[string]string {
	g, ok := m.gateway.(*HTTPGateway)
	if !ok {
		return nil
	}
	return map[string]string{"payment_gateway": g.BreakerState()}
}

// BreakerState is the state of the breaker around the gateway.
func (g *HTTPGateway) BreakerState() string {
	switch g.breaker.State() {
	case gobreaker.StateOpen:
		return "open"
	case gobreaker.StateHalfOpen:
		return "half_open"
	}
	return "closed"
}
