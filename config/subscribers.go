package config

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// Subscriber is an outside system's login on the embedded NATS server: a
// user of its own, named as the system (see outbox/broker.SystemPermissions).
type Subscriber struct {
	Name     string
	Password string
}

// subscriberName mirrors outbox/broker's rule for a system's name, so that
// a bad one stops start-up here naming the setting: 1 to 32 lower-case
// letters, digits and '-', starting with a letter. No "_", so it is never
// the name of one of Cairn's own consumers.
var subscriberName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

// Subscribers returns the outside systems of CAIRN_NATS_SUBSCRIBERS
// ("name:password,name:password"), CAIRN_NATS_SUBSCRIBERS_FILE (one
// name:password a line, # comments) and CAIRN_NATS_SUBSCRIBER_PASSWORD
// (the system "subscriber"). Errors name the setting: a malformed entry, a
// bad name, an empty password, a name given twice, a file that cannot be
// read.
func (c Config) Subscribers() ([]Subscriber, error) {
	var out []Subscriber
	var errs []error
	seen := map[string]string{}
	add := func(setting, entry string) {
		name, password, ok := strings.Cut(strings.TrimSpace(entry), ":")
		name = strings.TrimSpace(name)
		switch {
		case !ok || password == "":
			errs = append(errs, fmt.Errorf("%s: %q is not name:password", setting, maskPair(entry)))
		case !subscriberName.MatchString(name) || name == "cairn":
			errs = append(errs, fmt.Errorf("%s: %q is not a system name: 1 to 32 lower-case letters, digits and '-', starting with a letter, not cairn", setting, name))
		case seen[name] != "":
			errs = append(errs, fmt.Errorf("%s: system %q is given twice (also in %s)", setting, name, seen[name]))
		default:
			seen[name] = setting
			out = append(out, Subscriber{Name: name, Password: password})
		}
	}
	if c.NATSSubscriberPassword != "" {
		add("CAIRN_NATS_SUBSCRIBER_PASSWORD", "subscriber:"+c.NATSSubscriberPassword)
	}
	if c.NATSSubscribers != "" {
		for _, entry := range strings.Split(c.NATSSubscribers, ",") {
			add("CAIRN_NATS_SUBSCRIBERS", entry)
		}
	}
	if c.NATSSubscribersFile != "" {
		b, err := os.ReadFile(c.NATSSubscribersFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("CAIRN_NATS_SUBSCRIBERS_FILE: %w", err))
		}
		for _, line := range strings.Split(string(b), "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				add("CAIRN_NATS_SUBSCRIBERS_FILE", line)
			}
		}
	}
	return out, errors.Join(errs...)
}

// SubscribersWarning says, when outside systems are configured but Cairn
// runs on a NATS server of your own (CAIRN_NATS_URL), that they apply only
// to `cairn nats users`; "" otherwise.
func (c Config) SubscribersWarning() string {
	if c.EmbeddedNATS() || c.NATSSubscribers == "" && c.NATSSubscribersFile == "" && c.NATSSubscriberPassword == "" {
		return ""
	}
	return "CAIRN_NATS_SUBSCRIBERS, CAIRN_NATS_SUBSCRIBERS_FILE and CAIRN_NATS_SUBSCRIBER_PASSWORD configure the embedded NATS server; " +
		"with CAIRN_NATS_URL they do nothing: give your server the users `cairn nats users` prints"
}

// maskPair shows an entry without its password.
func maskPair(entry string) string {
	name, _, ok := strings.Cut(strings.TrimSpace(entry), ":")
	if !ok {
		return "****"
	}
	return name + ":****"
}
