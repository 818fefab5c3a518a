// Package relay stands in for Cairn's relay, the package that imports NATS.
package relay

// Name is the relay's.
func Name() string { return "relay" }
