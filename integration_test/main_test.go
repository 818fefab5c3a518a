// Package integration_test runs Cairn as its users do: the real binary,
// real PostgreSQL and real NATS, processes started, killed and restarted.
package integration_test

import (
	"testing"

	"github.com/cairn-dev/cairn/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }
