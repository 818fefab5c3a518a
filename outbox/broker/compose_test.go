package broker

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"golang.org/x/crypto/bcrypt"
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

// Every outside system in docker-compose.yml's NATS has exactly the
// permissions the embedded server gives a system of that name
// (SystemPermissions): a permission added to one and forgotten in the other
// fails here. Its sync_interval is the one Cairn is told.
func TestComposeNATSConfigMatchesEmbedded(t *testing.T) {
	conf, file := composeNATSConfig(t)
	var opts server.Options
	if err := opts.ProcessConfigString(conf); err != nil {
		t.Fatalf("docker-compose.yml's NATS configuration does not parse: %v\n%s", err, conf)
	}
	systems := 0
	for _, u := range opts.Users {
		if u.Username == internalUser {
			if u.Permissions != nil {
				t.Errorf("cairn's user is restricted in docker-compose.yml: %+v", u.Permissions)
			}
			continue
		}
		systems++
		samePermissions(t, "docker-compose.yml's user "+u.Username, u.Permissions, SystemPermissions(u.Username))
	}
	if systems < 2 {
		t.Fatalf("docker-compose.yml's NATS has %d outside systems, want the subscriber and an example", systems)
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

// samePermissions fails the test when got and want grant different
// subjects.
func samePermissions(t *testing.T, who string, got, want *server.Permissions) {
	t.Helper()
	if got == nil || got.Publish == nil || got.Subscribe == nil {
		t.Errorf("%s has no publish and subscribe permissions: %+v", who, got)
		return
	}
	same := func(what string, a, b *server.SubjectPermission) {
		for _, pair := range [][2][]string{{a.Allow, b.Allow}, {a.Deny, b.Deny}} {
			x, y := slices.Sorted(slices.Values(pair[0])), slices.Sorted(slices.Values(pair[1]))
			if !slices.Equal(x, y) {
				t.Errorf("%s: %s differ:\n  got:  %v\n  want: %v", who, what, x, y)
			}
		}
	}
	same("publish permissions", got.Publish, want.Publish)
	same("subscribe permissions", got.Subscribe, want.Subscribe)
	if got.Response != nil || want.Response != nil {
		t.Errorf("%s: response permissions %+v, want %+v", who, got.Response, want.Response)
	}
}

// What `cairn nats users` prints is a NATS configuration that gives each
// system its SystemPermissions and its password (as a bcrypt hash).
func TestAuthorizationConfigParses(t *testing.T) {
	text, err := AuthorizationConfig("cairn-pw", []System{{Name: "billing", Password: "b-pw"}, {Name: "subscriber", Password: "s-pw"}})
	if err != nil {
		t.Fatal(err)
	}
	var opts server.Options
	if err := opts.ProcessConfigString(text); err != nil {
		t.Fatalf("does not parse: %v\n%s", err, text)
	}
	if len(opts.Users) != 3 || opts.Users[0].Username != internalUser || opts.Users[0].Password != "cairn-pw" {
		t.Fatalf("users %+v", opts.Users)
	}
	for _, u := range opts.Users[1:] {
		samePermissions(t, "user "+u.Username, u.Permissions, SystemPermissions(u.Username))
		pw := map[string]string{"billing": "b-pw", "subscriber": "s-pw"}[u.Username]
		if bcrypt.CompareHashAndPassword([]byte(u.Password), []byte(pw)) != nil {
			t.Errorf("%s's password is not a bcrypt hash of its password", u.Username)
		}
	}
	if _, err := AuthorizationConfig("x", []System{{Name: "mail_x", Password: "p"}}); err == nil {
		t.Fatal("a system named like a Cairn consumer was accepted")
	}
}

// Cairn's own connections receive replies on InboxPrefix, which no outside
// system may read or write.
func TestSubscriberIsKeptOutOfCairnsInbox(t *testing.T) {
	for _, name := range []string{SubscriberUser, "billing"} {
		p := SystemPermissions(name)
		if !slices.Contains(p.Subscribe.Deny, InboxPrefix+".>") || !slices.Contains(p.Publish.Deny, InboxPrefix+".>") {
			t.Fatalf("%s is not denied %s.>: %+v %+v", name, InboxPrefix, p.Publish, p.Subscribe)
		}
		if strings.HasPrefix(InboxPrefix, SystemInboxPrefix(name)+".") || InboxPrefix == SystemInboxPrefix(name) {
			t.Fatalf("InboxPrefix %q lies under %s's inbox", InboxPrefix, name)
		}
	}
}
