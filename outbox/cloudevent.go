package outbox

import (
	"encoding/json"
	"sync/atomic"
	"time"
)

// CloudEvent is the wire form of every event: a CloudEvents 1.0 JSON
// document in structured mode. Consumers outside Go can read it with any
// CloudEvents SDK; the extensions carry correlation, causation and W3C trace
// context.
type CloudEvent struct {
	SpecVersion     string    `json:"specversion"`
	ID              string    `json:"id"`
	Source          string    `json:"source"`
	Type            string    `json:"type"`
	Subject         string    `json:"subject"`
	Time            time.Time `json:"time"`
	DataContentType string    `json:"datacontenttype"`
	// DataSchema is the URL of the JSON Schema of Data, which Cairn
	// serves (SchemaPath); absent from events appended before it existed.
	DataSchema    string          `json:"dataschema,omitempty"`
	Data          json.RawMessage `json:"data"`
	CorrelationID string          `json:"correlationid,omitempty"`
	CausationID   string          `json:"causationid,omitempty"`
	TraceParent   string          `json:"traceparent,omitempty"`
}

// Source returns the CloudEvents source of a module's events.
func Source(module string) string { return "/cairn/" + module }

// SchemaPath is where Cairn serves the JSON Schema of an event type's data.
func SchemaPath(eventType string) string { return "/schemas/events/" + eventType + ".json" }

// schemaBase is the base URL of the dataschema attribute; "" leaves it out.
var schemaBase atomic.Pointer[string]

// SetSchemaBase makes every event appended from now on carry dataschema =
// base + SchemaPath(type), base being where clients reach Cairn
// (CAIRN_PUBLIC_URL; app.New sets it). Like the catalog it is
// process-wide; "" leaves the attribute out.
func SetSchemaBase(base string) { schemaBase.Store(&base) }

// dataSchema returns the dataschema of an event type, "" when unset.
func dataSchema(eventType string) string {
	b := schemaBase.Load()
	if b == nil || *b == "" {
		return ""
	}
	return *b + SchemaPath(eventType)
}

// ContentType is the NATS Content-Type header of every published event: a
// CloudEvent in structured mode (CloudEvents NATS protocol binding).
const ContentType = "application/cloudevents+json"
