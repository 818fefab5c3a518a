package replay

import (
	"encoding/json"

	"github.com/cairn-dev/cairn/outbox"
)

func jsonEvent(e outbox.CloudEvent) ([]byte, error) { return json.Marshal(e) }
