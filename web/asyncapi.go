package web

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/outbox"
)

// AsyncAPI returns the AsyncAPI 3.0 document of the event types of v in the
// catalog: for each, the channel (its NATS subject, in stream EVENTS or
// INTERNAL), Cairn's send operation, and the message: a CloudEvents 1.0
// JSON document (structured mode) whose data has the JSON Schema of the
// type's Go payload. natsHost is the server clients connect to. Errors: a
// payload type the schema generator cannot encode.
func AsyncAPI(version, natsHost string, v outbox.Visibility) (map[string]any, error) {
	s := NewSchemas("#/components/schemas/")
	channels, operations, messages := map[string]any{}, map[string]any{}, map[string]any{}
	for _, d := range outbox.Catalog() {
		if d.Visibility != v {
			continue
		}
		data, err := s.Of(d.Payload, true)
		if err != nil {
			return nil, fmt.Errorf("asyncapi: %s: %w", d.Type, err)
		}
		stream := outbox.PublicStream
		if d.Visibility == outbox.Internal {
			stream = outbox.InternalStream
		}
		messages[d.Type] = map[string]any{
			"name":        d.Type,
			"title":       d.Type,
			"summary":     d.Description,
			"contentType": "application/cloudevents+json",
			"headers": map[string]any{
				"type": "object",
				"properties": map[string]any{
					"Nats-Msg-Id": map[string]any{"type": "string", "description": "The event id: JetStream drops a second publish of it."},
				},
			},
			"payload":            cloudEventSchema(d, data),
			"correlationId":      map[string]any{"location": "$message.payload#/correlationid", "description": "The request or event the chain began with."},
			"x-cloudevents-type": d.Type,
			"x-personal-fields":  classified(d, false),
			"x-secret-fields":    classified(d, true),
		}
		channels[d.Type] = map[string]any{
			"address":     d.Subject(),
			"title":       d.Type,
			"description": d.Description + " Stream " + stream + ".",
			"messages":    map[string]any{d.Type: map[string]any{"$ref": "#/components/messages/" + d.Type}},
			"servers":     []any{map[string]any{"$ref": "#/servers/nats"}},
			"x-stream":    stream,
		}
		operations["publish_"+d.Type] = map[string]any{
			"action":   "send",
			"channel":  map[string]any{"$ref": "#/channels/" + d.Type},
			"summary":  "Cairn publishes " + d.Type + " after the transaction that appended it commits.",
			"messages": []any{map[string]any{"$ref": "#/channels/" + d.Type + "/messages/" + d.Type}},
		}
	}
	title, about := "Cairn events", "Every public event type: subscribe to events.> as the read-only subscriber user. "
	if v == outbox.Internal {
		title, about = "Cairn internal events", "Internal event types, for Cairn's own consumers only: outside users can never read internal.>. "
	}
	return map[string]any{
		"asyncapi": "3.0.0",
		"info": map[string]any{
			"title":   title,
			"version": version,
			"description": about + "Each message is a CloudEvents 1.0 JSON document; its dataschema attribute is the URL of " +
				"the JSON Schema of its data, which Cairn serves. Delivery is at least once: deduplicate on the id.",
		},
		"defaultContentType": "application/cloudevents+json",
		"servers": map[string]any{
			"nats": map[string]any{"host": natsHost, "protocol": "nats", "description": "Cairn's NATS with JetStream"},
		},
		"channels":   channels,
		"operations": operations,
		"components": map[string]any{"messages": messages, "schemas": s.Defs},
	}, nil
}

// cloudEventSchema is the envelope every event travels in, with data.
func cloudEventSchema(d outbox.Declared, data map[string]any) map[string]any {
	str := func(about string) map[string]any { return map[string]any{"type": "string", "description": about} }
	return map[string]any{
		"type":     "object",
		"required": []any{"specversion", "id", "source", "type", "subject", "time", "datacontenttype", "data"},
		"properties": map[string]any{
			"specversion":     map[string]any{"const": "1.0"},
			"id":              map[string]any{"type": "string", "format": "uuid", "description": "A UUIDv7, unique per event."},
			"source":          map[string]any{"const": outbox.Source(outbox.Module(d.Type))},
			"type":            map[string]any{"const": d.Type},
			"subject":         str("The key: the aggregate the event is about, the unit of ordering."),
			"time":            map[string]any{"type": "string", "format": "date-time"},
			"datacontenttype": map[string]any{"const": "application/json"},
			"dataschema":      map[string]any{"type": "string", "format": "uri", "description": "The JSON Schema of data, served by Cairn."},
			"data":            data,
			"correlationid":   str("The request or event the chain began with."),
			"causationid":     str("The request or event that caused this one."),
			"traceparent":     map[string]any{"type": "string", "pattern": "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$", "description": "W3C trace context of the transaction that appended it."},
		},
	}
}

func classified(d outbox.Declared, secret bool) []string {
	out := []string{}
	for _, f := range d.Fields {
		if (secret && f.Secret) || (!secret && f.Personal) {
			out = append(out, f.Path)
		}
	}
	return out
}

// EventSchema returns the JSON Schema (draft 2020-12) of an event type's
// data as a document of its own, with $id base + outbox.SchemaPath.
func EventSchema(d outbox.Declared, base string) (map[string]any, error) {
	s := NewSchemas("#/$defs/")
	root, err := s.Of(d.Payload, true)
	if err != nil {
		return nil, fmt.Errorf("schema of %s: %w", d.Type, err)
	}
	root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	root["$id"] = base + outbox.SchemaPath(d.Type)
	root["title"] = d.Type
	root["description"] = d.Description
	if len(s.Defs) > 0 {
		root["$defs"] = s.Defs
	}
	return root, nil
}

// RegisterEventContracts serves the event contracts:
//
//   - GET /asyncapi.json: AsyncAPI 3.0 of the public event types;
//   - GET /asyncapi-internal.json: the internal ones, admin token only;
//   - GET /schemas/events/<type>.json: the JSON Schema of a type's data
//     (an internal type's with the admin token only), the URL every
//     event's dataschema attribute holds.
//
// base is CAIRN_PUBLIC_URL; natsHost the NATS server clients use.
func RegisterEventContracts(e *echo.Echo, version, base, natsHost string, admin echo.MiddlewareFunc) {
	public := onceDoc(func() (map[string]any, error) { return AsyncAPI(version, natsHost, outbox.Public) })
	internal := onceDoc(func() (map[string]any, error) { return AsyncAPI(version, natsHost, outbox.Internal) })
	serve := func(doc func() (map[string]any, error)) echo.HandlerFunc {
		return func(c echo.Context) error {
			d, err := doc()
			if err != nil {
				return err
			}
			return c.JSON(http.StatusOK, d)
		}
	}
	e.GET("/asyncapi.json", serve(public))
	e.GET("/asyncapi-internal.json", serve(internal), admin)
	e.GET("/schemas/events/:file", func(c echo.Context) error {
		name, ok := strings.CutSuffix(c.Param("file"), ".json")
		d, known := outbox.Lookup(name)
		if !ok || !known {
			return echo.ErrNotFound
		}
		if d.Visibility == outbox.Internal {
			if err := admin(func(echo.Context) error { return nil })(c); err != nil {
				return err
			}
		}
		doc, err := EventSchema(d, base)
		if err != nil {
			return err
		}
		c.Response().Header().Set(echo.HeaderContentType, "application/schema+json")
		return c.JSON(http.StatusOK, doc)
	})
}
