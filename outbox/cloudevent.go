package outbox

import (
	"encoding/json"
	"time"
)

// CloudEvent is the wire form of every event: a CloudEvents 1.0 JSON
// document in structured mode. Consumers outside Go can read it with any
// CloudEvents SDK; the extensions carry correlation, causation and W3C trace
// context.
type CloudEvent struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject"`
	Time            time.Time       `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data"`
	CorrelationID   string          `json:"correlationid,omitempty"`
	CausationID     string          `json:"causationid,omitempty"`
	TraceParent     string          `json:"traceparent,omitempty"`
}

// Source returns the CloudEvents source of a module's events.
func Source(module string) string { return "/cairn/" + module }
