package integration_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func getJSON(t *testing.T, url string, into any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("GET %s: Content-Type %q, body %s", url, ct, body)
	}
	if err := json.Unmarshal(body, into); err != nil {
		t.Fatalf("GET %s: %v in %s", url, err, body)
	}
	return resp.StatusCode
}

// With no configuration at all Cairn starts its own PostgreSQL and NATS,
// reports ready, serves the console, and on SIGTERM stops everything it
// started and exits 0.
func TestServeOnEmbeddedDefaults(t *testing.T) {
	dir, err := os.MkdirTemp("/tmp", "cairn-it-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := startCairn(t, map[string]string{
		"CAIRN_DATA_DIR":    dir + "/data",
		"CAIRN_NATS_LISTEN": fmt.Sprintf("127.0.0.1:%d", freePort(t)),
	})

	var health map[string]string
	if code := getJSON(t, p.HTTP+"/healthz", &health); code != 200 || health["status"] != "ok" {
		t.Fatalf("/healthz = %d %v", code, health)
	}
	var ready struct {
		Ready  bool
		Checks []struct {
			Name string
			OK   bool
		}
		Relay struct {
			State string
			Lease struct{ State, Holder string }
		}
		Consumers []struct{ Consumer, State string }
	}
	waitUntil(t, 10*time.Second, "/readyz", func() bool { return getJSON(t, p.HTTP+"/readyz", &ready) == 200 })
	names := map[string]bool{}
	for _, c := range ready.Checks {
		names[c.Name] = c.OK
	}
	for _, want := range []string{"database", "migrations", "nats", "relay"} {
		if !names[want] {
			t.Errorf("/readyz check %q missing or failing: %+v", want, ready)
		}
	}
	// Beyond pass or fail, /readyz says who holds the relay's lease and what
	// each consumer is doing.
	waitUntil(t, 10*time.Second, "/readyz to show every consumer consuming", func() bool {
		getJSON(t, p.HTTP+"/readyz", &ready)
		consuming := 0
		for _, c := range ready.Consumers {
			if c.State == "consuming" {
				consuming++
			}
		}
		return len(ready.Consumers) > 0 && consuming == len(ready.Consumers)
	})
	if ready.Relay.State != "leader" || ready.Relay.Lease.State != "holding" || ready.Relay.Lease.Holder == "" {
		t.Errorf("/readyz relay: %+v, want the leader holding its lease", ready.Relay)
	}
	var notFound struct {
		Error struct{ Code, Message string }
	}
	if code := getJSON(t, p.HTTP+"/api/v1/nothing-here", &notFound); code != 404 || notFound.Error.Code != "not_found" {
		t.Errorf("unknown route = %d %+v", code, notFound)
	}
	resp, err := http.Get(p.HTTP + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "Cairn") || !strings.Contains(string(page), "leader") {
		t.Errorf("console: %d, page without the relay state", resp.StatusCode)
	}
	if resp.Header.Get("X-Request-Id") == "" {
		t.Error("no X-Request-Id on responses")
	}

	if err := p.Stop(60 * time.Second); err != nil {
		t.Fatalf("cairn did not exit cleanly on SIGTERM: %v", err)
	}
	logs := p.logs.String()
	for _, want := range []string{"shutting down", "embedded NATS stopped", "embedded PostgreSQL stopped"} {
		if !strings.Contains(logs, want) {
			t.Errorf("shutdown log lacks %q", want)
		}
	}
	if out, _ := exec.Command("pgrep", "-f", dir).Output(); len(out) > 0 {
		t.Errorf("processes left running after shutdown: %s", out)
	}
}

// A bad setting stops start-up with exit code 2 and names the setting and
// what it accepts; `cairn config` masks secrets.
func TestCommandLine(t *testing.T) {
	run := func(env []string, args ...string) (string, int) { return runCairn(t, env, args...) }
	out, code := run([]string{"CAIRN_LOG_LEVEL=loud"}, "serve")
	if code != 2 || !strings.Contains(out, "CAIRN_LOG_LEVEL") || !strings.Contains(out, "debug, info, warn, error") {
		t.Errorf("bad log level: exit %d, %q", code, out)
	}
	out, code = run([]string{"CAIRN_NATS_SYNC_INTERVAL=soon"})
	if code != 2 || !strings.Contains(out, "CAIRN_NATS_SYNC_INTERVAL") {
		t.Errorf("bad duration: exit %d, %q", code, out)
	}
	out, code = run(nil, "frobnicate")
	if code != 2 || !strings.Contains(out, "usage") {
		t.Errorf("unknown command: exit %d, %q", code, out)
	}
	out, code = run([]string{"CAIRN_DATABASE_URL=postgres://cairn:hunter2@db/cairn", "CAIRN_ADMIN_TOKEN=tok"}, "config")
	if code != 0 || strings.Contains(out, "hunter2") || strings.Contains(out, "=tok") || !strings.Contains(out, "CAIRN_DATABASE_URL=postgres://cairn:****@db/cairn") {
		t.Errorf("config: exit %d, %q", code, out)
	}
	out, code = run(nil, "version")
	if code != 0 || !strings.HasPrefix(out, "cairn ") {
		t.Errorf("version: exit %d, %q", code, out)
	}
}
