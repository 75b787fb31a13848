package gateway

import (
	"testing"

	"github.com/databus-gateway/databus/internal/teststate"
)

// TestMain keeps the gateways these tests start out of the user's state
// folder (internal/teststate).
func TestMain(m *testing.M) { teststate.Main(m) }
