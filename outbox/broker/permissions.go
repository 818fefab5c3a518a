package broker

import (
	"fmt"
	"regexp"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/cairn-dev/cairn/outbox"
)

// SubscriberUser is the outside system of CAIRN_NATS_SUBSCRIBER_PASSWORD,
// kept from before each system had a user of its own. It is one system
// like the others, with two differences: its inbox prefix is NATS's
// default, _INBOX (no other system may read it), so clients need no
// option; and it is named by Cairn rather than by its operator.
const SubscriberUser = "subscriber"

// systemName is what an outside system may be called: a NATS user name, a
// JetStream consumer name and a subject token at once. It has no "_", so
// it can never be the name of one of Cairn's own consumers
// (<module>_<handler>), and no ".", "*" or ">".
var systemName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

// ValidSystemName reports what is wrong with an outside system's name, or
// nil.
func ValidSystemName(name string) error {
	switch {
	case !systemName.MatchString(name):
		return fmt.Errorf("%q is not a system name: 1 to 32 lower-case letters, digits and '-', starting with a letter", name)
	case name == internalUser:
		return fmt.Errorf("%q is Cairn's own NATS user", name)
	}
	return nil
}

// internalUser is the NATS user Cairn itself connects as.
const internalUser = "cairn"

// SystemInboxPrefix is where an outside system's JetStream requests are
// answered: _INBOX_<name>, which only that system may read, so one system
// never sees the replies (its consumers' messages among them) another one
// gets. Its clients set it (nats.go: nats.CustomInboxPrefix; the nats CLI:
// --inbox-prefix). The subscriber user keeps NATS's default, _INBOX.
func SystemInboxPrefix(name string) string {
	if name == SubscriberUser {
		return "_INBOX"
	}
	return "_INBOX_" + name
}

// SystemPermissions is what the outside system called name may do on NATS:
// read public events (subscribe to events.>) and keep one durable consumer
// on EVENTS, named as the system itself, which it may create, update,
// inspect, pull from, ack and delete; and look at what harms no one
// (its own user and account info, the streams' names and infos, EVENTS' messages by
// sequence, the names of EVENTS' consumers). It cannot touch any other
// consumer (another system's, or Cairn's own, whose names all contain a
// "_"), read their state, publish events, see INTERNAL's messages, change
// streams, or read another inbox than its own: NATS permissions match
// whole subject tokens, so the consumer's name is spelled out in every
// subject that carries one. docker-compose.yml grants the same (a test
// compares them), and `cairn nats users` prints them for your own server.
func SystemPermissions(name string) *server.Permissions {
	events, own := outbox.PublicStream, name
	inbox := SystemInboxPrefix(name) + ".>"
	return &server.Permissions{
		Publish: &server.SubjectPermission{
			Allow: []string{
				"$SYS.REQ.USER.INFO", // its own user's permissions (nats account info)
				"$JS.API.INFO",
				"$JS.API.STREAM.NAMES",
				"$JS.API.STREAM.LIST",
				"$JS.API.STREAM.INFO." + events,
				"$JS.API.STREAM.MSG.GET." + events,
				"$JS.API.DIRECT.GET." + events,
				"$JS.API.DIRECT.GET." + events + ".>",
				"$JS.API.CONSUMER.NAMES." + events,
				"$JS.API.CONSUMER.CREATE." + events + "." + own,
				"$JS.API.CONSUMER.CREATE." + events + "." + own + ".>",
				"$JS.API.CONSUMER.DURABLE.CREATE." + events + "." + own,
				"$JS.API.CONSUMER.INFO." + events + "." + own,
				"$JS.API.CONSUMER.DELETE." + events + "." + own,
				"$JS.API.CONSUMER.MSG.NEXT." + events + "." + own,
				// Acks and flow-control replies name the consumer: in
				// the v1 form ($JS.ACK.<stream>.<consumer>.…) and the v2
				// one ($JS.ACK.<domain>.<account hash>.<stream>.<consumer>.…).
				"$JS.ACK." + events + "." + own + ".>",
				"$JS.ACK.*.*." + events + "." + own + ".>",
				"$JS.FC." + events + "." + own + ".>",
				"$JS.FC.*.*." + events + "." + own + ".>",
			},
			// Not allowed above either; denied so that widening the
			// allow list cannot let anyone answer Cairn's requests.
			Deny: []string{InboxPrefix + ".>"},
		},
		Subscribe: &server.SubjectPermission{
			Allow: []string{outbox.PublicPrefix + ">", inbox},
			Deny:  []string{InboxPrefix + ".>"},
		},
	}
}

// SubscriberPermissions are the subscriber user's: SystemPermissions of
// SubscriberUser.
func SubscriberPermissions() *server.Permissions { return SystemPermissions(SubscriberUser) }
