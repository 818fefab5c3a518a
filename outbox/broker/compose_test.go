package broker

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// composeNATSConfig returns the NATS server configuration that
// docker-compose.yml hands the nats service, with compose's "$$" escapes
// undone, and the whole file.
func composeNATSConfig(t *testing.T) (conf, file string) {
	t.Helper()
	b, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	file = string(b)
	lines := strings.Split(file, "\n")
	start := slices.IndexFunc(lines, func(l string) bool { return strings.TrimSpace(l) == "content: |" })
	if start < 0 {
		t.Fatal("docker-compose.yml has no `content: |` block for the NATS configuration")
	}
	indent := len(lines[start]) - len(strings.TrimLeft(lines[start], " "))
	var block []string
	for _, l := range lines[start+1:] {
		if strings.TrimSpace(l) != "" && len(l)-len(strings.TrimLeft(l, " ")) <= indent {
			break
		}
		block = append(block, strings.TrimPrefix(l, strings.Repeat(" ", indent+2)))
	}
	return strings.ReplaceAll(strings.Join(block, "\n"), "$$", "$"), file
}

// docker-compose.yml's NATS grants its subscriber user exactly what the
// embedded server grants (SubscriberPermissions): a permission added to
// one and forgotten in the other fails here. Its sync_interval is the one
// Cairn is told.
func TestComposeNATSConfigMatchesEmbedded(t *testing.T) {
	conf, file := composeNATSConfig(t)
	var opts server.Options
	if err := opts.ProcessConfigString(conf); err != nil {
		t.Fatalf("docker-compose.yml's NATS configuration does not parse: %v\n%s", err, conf)
	}
	var got *server.Permissions
	for _, u := range opts.Users {
		if u.Username == SubscriberUser {
			got = u.Permissions
		}
	}
	if got == nil {
		t.Fatalf("docker-compose.yml's NATS has no %q user with permissions", SubscriberUser)
	}
	want := SubscriberPermissions()
	same := func(what string, a, b *server.SubjectPermission) {
		if a == nil || b == nil {
			t.Errorf("%s: compose %v, embedded %v", what, a, b)
			return
		}
		for _, pair := range [][2][]string{{a.Allow, b.Allow}, {a.Deny, b.Deny}} {
			x, y := slices.Sorted(slices.Values(pair[0])), slices.Sorted(slices.Values(pair[1]))
			if !slices.Equal(x, y) {
				t.Errorf("%s differ:\n  docker-compose.yml: %v\n  embedded:           %v", what, x, y)
			}
		}
	}
	same("publish permissions", got.Publish, want.Publish)
	same("subscribe permissions", got.Subscribe, want.Subscribe)
	if got.Response != nil || want.Response != nil {
		t.Errorf("response permissions: compose %+v, embedded %+v", got.Response, want.Response)
	}

	m := regexp.MustCompile(`CAIRN_NATS_SYNC_INTERVAL:\s*(\S+)`).FindStringSubmatch(file)
	if m == nil {
		t.Fatal("docker-compose.yml does not set CAIRN_NATS_SYNC_INTERVAL for cairn")
	}
	told, err := time.ParseDuration(m[1])
	if err != nil || told != opts.SyncInterval {
		t.Errorf("Cairn is told CAIRN_NATS_SYNC_INTERVAL=%s, NATS syncs every %s", m[1], opts.SyncInterval)
	}
}

// Cairn's own connections receive replies on InboxPrefix, which the
// subscriber may neither read nor write.
func TestSubscriberIsKeptOutOfCairnsInbox(t *testing.T) {
	p := SubscriberPermissions()
	if !slices.Contains(p.Subscribe.Deny, InboxPrefix+".>") || !slices.Contains(p.Publish.Deny, InboxPrefix+".>") {
		t.Fatalf("the subscriber is not denied %s.>: %+v %+v", InboxPrefix, p.Publish, p.Subscribe)
	}
	if strings.HasPrefix(InboxPrefix, "_INBOX") {
		t.Fatalf("InboxPrefix %q lies under _INBOX, which the subscriber may read", InboxPrefix)
	}
}
