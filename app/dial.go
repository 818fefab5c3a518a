package app

import (
	"net"
	"time"
)

// Without these, a connection whose peer froze or whose path went dark
// without a FIN or RST is noticed only when Linux's keepalive gives up
// (about 2 h 11 min by default), and a write to it may wait about 15
// minutes of retransmissions. Every connection Cairn dials to PostgreSQL
// and NATS therefore probes an idle peer after deadIdle and gives up after
// a few unanswered probes, and gives up on unacknowledged data after
// deadWrite (TCP_USER_TIMEOUT, on Linux), so a blackholed path errors in
// seconds. Probes cost a few bytes a second per idle connection.
const (
	deadIdle     = 5 * time.Second
	deadInterval = 2 * time.Second
	deadProbes   = 3
	deadWrite    = 10 * time.Second
)

// hardenedDialer returns the dialer for every connection Cairn makes.
func hardenedDialer() *net.Dialer {
	return &net.Dialer{
		Timeout: 10 * time.Second,
		KeepAliveConfig: net.KeepAliveConfig{
			Enable:   true,
			Idle:     deadIdle,
			Interval: deadInterval,
			Count:    deadProbes,
		},
		Control: setUserTimeout(deadWrite),
	}
}
