package integration_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/testenv"
)

// natscliVersion is the nats CLI README.md's commands were checked with.
const natscliVersion = "v0.5.0"

// natsCLI builds the nats CLI from the Go module proxy into a directory of
// the test's (the build cache makes later runs quick).
func natsCLI(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "install", "github.com/nats-io/natscli/nats@"+natscliVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=-mod=mod")
	cmd.Dir = dir // outside Cairn's module: the CLI's own dependencies
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the nats CLI %s: %v\n%s", natscliVersion, err, out)
	}
	return filepath.Join(dir, "nats")
}

// Every nats command README.md lists for an outside system works for one,
// logged in as itself with its inbox prefix; the ones it says do not work
// fail.
func TestNatsCLICommandsOfTheReadme(t *testing.T) {
	bin := natsCLI(t)
	port := freePort(t)
	p := startCairn(t, map[string]string{
		"CAIRN_DATABASE_URL":     testenv.MustDB(t).URL,
		"CAIRN_NATS_LISTEN":      fmt.Sprintf("127.0.0.1:%d", port),
		"CAIRN_NATS_SUBSCRIBERS": "billing:b-secret",
	})
	if code, _ := postJSON(t, p.HTTP+"/api/v1/users", map[string]string{"username": "ada", "email": "ada@example.com", "password": "correct horse"}); code != 201 {
		t.Fatalf("sign-up: %d", code)
	}
	waitUntil(t, 30*time.Second, "the sign-up's events", func() bool {
		r := testenv.Do(t, "GET", p.HTTP+"/api/v1/mail/messages?to=ada@example.com", nil)
		return strings.Contains(r.Raw, `"messages":[{`)
	})
	nats := func(args ...string) (string, error) {
		base := []string{"--server", fmt.Sprintf("nats://billing:b-secret@127.0.0.1:%d", port), "--inbox-prefix", "_INBOX_billing", "--timeout", "3s"}
		out, err := exec.Command(bin, append(base, args...)...).CombinedOutput()
		return string(out), err
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"stream", "ls"}, "INTERNAL"},
		{[]string{"stream", "info", "EVENTS"}, "events.>"},
		{[]string{"stream", "get", "EVENTS", "1"}, "users.account_created.v1"},
		{[]string{"consumer", "add", "EVENTS", "billing", "--pull", "--deliver", "all", "--ack", "explicit", "--filter", "events.users.>", "--defaults"}, "billing"},
		{[]string{"consumer", "info", "EVENTS", "billing"}, "events.users.>"},
		{[]string{"consumer", "next", "EVENTS", "billing", "--count", "1"}, "users.account_created.v1"},
		{[]string{"consumer", "ls", "EVENTS", "--names"}, "billing"},
		{[]string{"account", "info"}, "Account Information"},
	} {
		out, err := nats(c.args...)
		if err != nil || !strings.Contains(out, c.want) || strings.Contains(out, "Violation") {
			t.Errorf("nats %s: %v\n%s", strings.Join(c.args, " "), err, out)
		}
	}
	// With billing's consumer there, `consumer ls` asks for every
	// consumer's state, which billing may not read.
	for _, args := range [][]string{
		{"consumer", "ls", "EVENTS"},
		{"consumer", "add", "EVENTS", "somebody-else", "--pull", "--defaults"},
		{"consumer", "rm", "INTERNAL", "mail_activation_email", "-f"},
		{"stream", "view", "EVENTS"},
	} {
		if out, err := nats(args...); err == nil && !strings.Contains(out, "Violation") {
			t.Errorf("nats %s worked:\n%s", strings.Join(args, " "), out)
		}
	}
	if out, err := nats("consumer", "rm", "EVENTS", "billing", "-f"); err != nil {
		t.Errorf("nats consumer rm EVENTS billing: %v\n%s", err, out)
	}
}
