package consumer

import (
	"encoding/json"

	"github.com/google/uuid"
)

// keyOf reads the ordering key (the CloudEvents subject) of a message.
func keyOf(data []byte) (string, bool) {
	var k struct {
		Subject string `json:"subject"`
	}
	if json.Unmarshal(data, &k) != nil || k.Subject == "" {
		return "", false
	}
	return k.Subject, true
}

func validUUID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil && len(s) == 36
}
