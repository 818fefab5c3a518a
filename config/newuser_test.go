package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A port outside 0–65535 is a configuration error naming the setting.
func TestPortsAreValidated(t *testing.T) {
	for name, value := range map[string]string{
		"CAIRN_NATS_LISTEN": ":99999", "CAIRN_HTTP_ADDR": ":99999",
	} {
		c, err := Load(env(map[string]string{name: value}))
		if err == nil {
			err = c.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "65535") {
			t.Errorf("%s=%s: %v", name, value, err)
		}
	}
	for _, ok := range []string{"127.0.0.1:0", "127.0.0.1:65535"} {
		c, _ := Load(env(map[string]string{"CAIRN_NATS_LISTEN": ok, "CAIRN_HTTP_ADDR": ok}))
		if err := c.Validate(); err != nil {
			t.Errorf("%s refused: %v", ok, err)
		}
	}
}

// CAIRN_PUBLIC_URL follows CAIRN_HTTP_ADDR unless it is set; when it is
// set and names this machine on another port, Cairn warns.
func TestPublicURLFollowsHTTPAddr(t *testing.T) {
	for addr, want := range map[string]string{
		":8080": "http://localhost:8080", ":9090": "http://localhost:9090", "0.0.0.0:9090": "http://localhost:9090",
		"127.0.0.1:9090": "http://127.0.0.1:9090", "[::1]:9090": "http://[::1]:9090", "[::]:9090": "http://localhost:9090",
	} {
		c, err := Load(env(map[string]string{"CAIRN_HTTP_ADDR": addr}))
		if err != nil || c.PublicURL != want || c.PublicURLWarning() != "" {
			t.Errorf("CAIRN_HTTP_ADDR=%s: public URL %s (%v), warning %q; want %s", addr, c.PublicURL, err, c.PublicURLWarning(), want)
		}
	}
	c, _ := Load(env(map[string]string{"CAIRN_HTTP_ADDR": ":9090", "CAIRN_PUBLIC_URL": "http://localhost:8080"}))
	if w := c.PublicURLWarning(); !strings.Contains(w, "CAIRN_PUBLIC_URL") || !strings.Contains(w, "9090") {
		t.Errorf("a public URL on another local port: warning %q", w)
	}
	c, _ = Load(env(map[string]string{"CAIRN_HTTP_ADDR": ":9090", "CAIRN_PUBLIC_URL": "https://cairn.example.com"}))
	if w := c.PublicURLWarning(); w != "" {
		t.Errorf("a public URL behind a proxy: warning %q", w)
	}
}

// Outside systems come from a list, a file and the legacy password; bad
// entries are named by their setting and never show a password.
func TestSubscribers(t *testing.T) {
	file := filepath.Join(t.TempDir(), "subscribers")
	if err := os.WriteFile(file, []byte("# systems\nanalytics:a-pw:with:colons\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(env(map[string]string{
		"CAIRN_NATS_SUBSCRIBERS": "billing:b-pw, crm:c-pw", "CAIRN_NATS_SUBSCRIBERS_FILE": file, "CAIRN_NATS_SUBSCRIBER_PASSWORD": "s-pw",
	}))
	if err != nil {
		t.Fatal(err)
	}
	subs, err := c.Subscribers()
	want := []Subscriber{{"subscriber", "s-pw"}, {"billing", "b-pw"}, {"crm", "c-pw"}, {"analytics", "a-pw:with:colons"}}
	if err != nil || len(subs) != len(want) {
		t.Fatalf("%+v %v", subs, err)
	}
	for i := range want {
		if subs[i] != want[i] {
			t.Errorf("system %d: %+v, want %+v", i, subs[i], want[i])
		}
	}
	if out := strings.Join(c.Masked(), "\n"); strings.Contains(out, "b-pw") || !strings.Contains(out, "CAIRN_NATS_SUBSCRIBERS=billing:****,crm:****") {
		t.Errorf("masked:\n%s", out)
	}
	for value, want := range map[string]string{
		"billing":                "not name:password",
		"billing:":               "not name:password",
		"Billing:x":              "not a system name",
		"mail_x:x":               "not a system name",
		"cairn:x":                "not a system name",
		"billing:x,billing:y":    "twice",
		"subscriber:x":           "twice",
		"billing:secret-pw,nope": "not name:password",
	} {
		c, _ := Load(env(map[string]string{"CAIRN_NATS_SUBSCRIBERS": value, "CAIRN_NATS_SUBSCRIBER_PASSWORD": "s"}))
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), "CAIRN_NATS_SUBSCRIBERS") || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "secret-pw") {
			t.Errorf("CAIRN_NATS_SUBSCRIBERS=%s: %v, want an error saying %q", value, err, want)
		}
	}
	c, _ = Load(env(map[string]string{"CAIRN_NATS_SUBSCRIBERS_FILE": filepath.Join(t.TempDir(), "missing")}))
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "CAIRN_NATS_SUBSCRIBERS_FILE") {
		t.Errorf("a missing file: %v", err)
	}
}
