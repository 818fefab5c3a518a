package broker

import "github.com/nats-io/nats-server/v2/server"

// SubscriberPermissions lets an external system read public events and keep
// its own durable consumers on EVENTS, and nothing else: it cannot publish
// events, touch INTERNAL, or change streams. It may subscribe to _INBOX.>,
// where its own JetStream requests are answered, and never to Cairn's
// InboxPrefix, where Cairn's consumers receive internal events.
// docker-compose.yml grants the same (a test compares them).
func SubscriberPermissions() *server.Permissions {
	return &server.Permissions{
		Publish: &server.SubjectPermission{
			Allow: []string{
				"$JS.API.INFO",
				"$JS.API.STREAM.NAMES",
				"$JS.API.STREAM.INFO.EVENTS",
				"$JS.API.STREAM.MSG.GET.EVENTS",
				"$JS.API.DIRECT.GET.EVENTS",
				"$JS.API.DIRECT.GET.EVENTS.>",
				"$JS.API.CONSUMER.CREATE.EVENTS",
				"$JS.API.CONSUMER.CREATE.EVENTS.>",
				"$JS.API.CONSUMER.DURABLE.CREATE.EVENTS.>",
				"$JS.API.CONSUMER.INFO.EVENTS.>",
				"$JS.API.CONSUMER.DELETE.EVENTS.>",
				"$JS.API.CONSUMER.LIST.EVENTS",
				"$JS.API.CONSUMER.NAMES.EVENTS",
				"$JS.API.CONSUMER.MSG.NEXT.EVENTS.>",
				"$JS.ACK.EVENTS.>",
				"$JS.FC.EVENTS.>",
			},
			// Not allowed above either; denied so that widening the
			// allow list cannot let anyone answer Cairn's requests.
			Deny: []string{InboxPrefix + ".>"},
		},
		Subscribe: &server.SubjectPermission{
			Allow: []string{"events.>", "_INBOX.>"},
			Deny:  []string{InboxPrefix + ".>"},
		},
	}
}
