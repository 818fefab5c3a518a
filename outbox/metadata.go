package outbox

import "context"

// Metadata is the causal context stamped on every event appended under a
// context: the request or event that led to it, and the active trace.
type Metadata struct {
	CorrelationID string
	CausationID   string
	TraceParent   string
}

type metadataKey struct{}

// WithMetadata returns a context whose appended events carry m. The HTTP
// layer sets it from the request id; the consumer runtime from the event
// being handled.
func WithMetadata(ctx context.Context, m Metadata) context.Context {
	return context.WithValue(ctx, metadataKey{}, m)
}

// MetadataFrom returns the metadata set on ctx, if any.
func MetadataFrom(ctx context.Context) Metadata {
	m, _ := ctx.Value(metadataKey{}).(Metadata)
	return m
}
