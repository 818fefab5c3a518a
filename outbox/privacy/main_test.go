package privacy_test

import (
	"testing"

	"github.com/cairn-dev/cairn/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }
