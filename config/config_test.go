package config

import (
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) Getenv {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestDefaultsAreValid(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if !c.EmbeddedPostgres() || !c.EmbeddedNATS() || c.HTTPAddr != ":8080" || c.NATSListen != "127.0.0.1:4222" {
		t.Fatalf("unexpected defaults: %+v", c)
	}
}

func TestBadSettingsAreNamed(t *testing.T) {
	cases := map[string]string{
		"CAIRN_LOG_LEVEL":              "loud",
		"CAIRN_HTTP_ADDR":              "8080",
		"CAIRN_DATABASE_URL":           "mysql://u:hunter2@h/db",
		"CAIRN_NATS_URL":               "http://x",
		"CAIRN_PUBLIC_URL":             "localhost",
		"CAIRN_NATS_SYNC_INTERVAL":     "0s",
		"CAIRN_NATS_LISTEN":            "nowhere",
		"CAIRN_PAYMENTS_URL":           "ftp://u:hunter2@gw",
		"CAIRN_PAYMENTS_DECLINE_ABOVE": "-1",
		"CAIRN_ORDERS_STEP_TIMEOUT":    "10ms",
	}
	for name, value := range cases {
		c, err := Load(env(map[string]string{name: value}))
		if err == nil {
			err = c.Validate()
		}
		if err == nil {
			t.Errorf("%s=%s: accepted", name, value)
			continue
		}
		if !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%s: error does not name the setting: %v", name, value, err)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error leaks a password: %v", err)
		}
	}
	if _, err := Load(env(map[string]string{"CAIRN_DATABASE_MAX_CONNS": "many"})); err == nil || !strings.Contains(err.Error(), "CAIRN_DATABASE_MAX_CONNS") {
		t.Errorf("unparsable integer not reported by name: %v", err)
	}
}

func TestMaskedHidesSecrets(t *testing.T) {
	c, _ := Load(env(map[string]string{
		"CAIRN_DATABASE_URL":             "postgres://cairn:s3cret@db:5432/cairn",
		"CAIRN_NATS_URL":                 "nats://app:natspw@n1:4222,nats://app:natspw@n2:4222",
		"CAIRN_ADMIN_TOKEN":              "tok-123",
		"CAIRN_NATS_SUBSCRIBER_PASSWORD": "subpw",
		"CAIRN_SMTP_URL":                 "smtp://mailer:mailpw@smtp:587",
	}))
	out := strings.Join(c.Masked(), "\n")
	for _, secret := range []string{"s3cret", "natspw", "tok-123", "subpw", "mailpw"} {
		if strings.Contains(out, secret) {
			t.Errorf("secret %q printed:\n%s", secret, out)
		}
	}
	for _, want := range []string{"CAIRN_DATABASE_URL=postgres://cairn:****@db:5432/cairn", "CAIRN_ADMIN_TOKEN=****", "CAIRN_LOG_LEVEL=info"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
}

// NATS's own default sync_interval (2m) is accepted, a minute more is not;
// idempotency keys are kept 24 hours unless told otherwise.
func TestDurationRanges(t *testing.T) {
	cases := []struct {
		name, value string
		ok          bool
	}{
		{"CAIRN_NATS_SYNC_INTERVAL", "2m", true},
		{"CAIRN_NATS_SYNC_INTERVAL", "10ms", true},
		{"CAIRN_NATS_SYNC_INTERVAL", "2m1s", false},
		{"CAIRN_NATS_SYNC_INTERVAL", "0s", false},
		{"CAIRN_NATS_SYNC_INTERVAL", "-1s", false},
		{"CAIRN_IDEMPOTENCY_RETENTION", "168h", true},
		{"CAIRN_IDEMPOTENCY_RETENTION", "1m", true},
		{"CAIRN_IDEMPOTENCY_RETENTION", "30s", false},
		{"CAIRN_IDEMPOTENCY_RETENTION", "0s", false},
		{"CAIRN_IDEMPOTENCY_RETENTION", "9000h", false},
		{"CAIRN_IDEMPOTENCY_RETENTION", "a day", false},
	}
	for _, c := range cases {
		cfg, err := Load(env(map[string]string{c.name: c.value}))
		if err == nil {
			err = cfg.Validate()
		}
		if c.ok && err != nil {
			t.Errorf("%s=%s: refused: %v", c.name, c.value, err)
		}
		if !c.ok && (err == nil || !strings.Contains(err.Error(), c.name)) {
			t.Errorf("%s=%s: want an error naming the setting, got %v", c.name, c.value, err)
		}
	}
	if d := Default().IdempotencyRetention; d != 24*time.Hour {
		t.Errorf("default idempotency retention %s, want 24h", d)
	}
}

// The lake's settings: each bad value is named; good ones are taken.
func TestLakeSettings(t *testing.T) {
	for name, value := range map[string]string{
		"CAIRN_LAKE":                 "maybe",
		"CAIRN_LAKE_EXPORT_URL":      "ftp://host/lake",
		"CAIRN_LAKE_EXPORT_INTERVAL": "500ms",
		"CAIRN_LAKE_EXPORT_PERIOD":   "2h",
		"CAIRN_EVENTS_MAX_AGE":       "10m",
	} {
		c, err := Load(env(map[string]string{name: value}))
		if err == nil {
			err = c.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%s: %v, want it refused by name", name, value, err)
		}
	}
	c, err := Load(env(map[string]string{
		"CAIRN_LAKE": "off", "CAIRN_LAKE_EXPORT_URL": "s3://bucket/prefix?region=eu-west-1", "CAIRN_LAKE_EXPORT_INTERVAL": "0",
		"CAIRN_LAKE_EXPORT_PERIOD": "24h", "CAIRN_EVENTS_MAX_AGE": "720h",
	}))
	if err == nil {
		err = c.Validate()
	}
	if err != nil || c.LakeOn() || c.LakeExportTarget() != "s3://bucket/prefix?region=eu-west-1" || c.EventsMaxAge != 720*time.Hour {
		t.Fatalf("good lake settings: %+v, %v", c, err)
	}
	d := Default()
	d.DataDir = "/var/cairn"
	if !d.LakeOn() || d.LakeExportTarget() != "file:///var/cairn/lake" || d.LakeExportInterval != 5*time.Minute {
		t.Fatalf("lake defaults: %+v, target %s", d, d.LakeExportTarget())
	}
}
