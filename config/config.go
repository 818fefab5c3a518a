// Package config holds Cairn's settings: read from CAIRN_* environment
// variables over documented defaults, validated before anything starts so a
// bad setting stops start-up with a message that names it.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Config is the effective configuration. The environment variable of each
// field is in its `env` tag; those names are part of Cairn's contract.
type Config struct {
	HTTPAddr               string        `env:"CAIRN_HTTP_ADDR"`
	DataDir                string        `env:"CAIRN_DATA_DIR"`
	DatabaseURL            string        `env:"CAIRN_DATABASE_URL" secret:"url"`
	DatabaseMaxConns       int           `env:"CAIRN_DATABASE_MAX_CONNS"`
	NATSURL                string        `env:"CAIRN_NATS_URL" secret:"url"`
	NATSListen             string        `env:"CAIRN_NATS_LISTEN"`
	NATSSubscriberPassword string        `env:"CAIRN_NATS_SUBSCRIBER_PASSWORD" secret:"value"`
	NATSSubscribers        string        `env:"CAIRN_NATS_SUBSCRIBERS" secret:"pairs"`
	NATSSubscribersFile    string        `env:"CAIRN_NATS_SUBSCRIBERS_FILE"`
	NATSSyncInterval       time.Duration `env:"CAIRN_NATS_SYNC_INTERVAL"`
	NATSReplicas           int           `env:"CAIRN_NATS_REPLICAS"`
	AdminToken             string        `env:"CAIRN_ADMIN_TOKEN" secret:"value"`
	SecretKey              string        `env:"CAIRN_SECRET_KEY" secret:"value"`
	PublicURL              string        `env:"CAIRN_PUBLIC_URL"`
	SMTPURL                string        `env:"CAIRN_SMTP_URL" secret:"url"`
	LogLevel               string        `env:"CAIRN_LOG_LEVEL"`
	LogFormat              string        `env:"CAIRN_LOG_FORMAT"`
	ShutdownTimeout        time.Duration `env:"CAIRN_SHUTDOWN_TIMEOUT"`
	IdempotencyRetention   time.Duration `env:"CAIRN_IDEMPOTENCY_RETENTION"`
	Lake                   string        `env:"CAIRN_LAKE"`
	LakeExportURL          string        `env:"CAIRN_LAKE_EXPORT_URL" secret:"url"`
	LakeExportInterval     time.Duration `env:"CAIRN_LAKE_EXPORT_INTERVAL"`
	LakeExportPeriod       time.Duration `env:"CAIRN_LAKE_EXPORT_PERIOD"`
	EventsMaxAge           time.Duration `env:"CAIRN_EVENTS_MAX_AGE"`
	PaymentsURL            string        `env:"CAIRN_PAYMENTS_URL" secret:"url"`
	PaymentsDeclineAbove   int64         `env:"CAIRN_PAYMENTS_DECLINE_ABOVE"`
	OrdersStepTimeout      time.Duration `env:"CAIRN_ORDERS_STEP_TIMEOUT"`
}

// The range of CAIRN_NATS_SYNC_INTERVAL. It must be able to describe a
// server left at NATS's own default sync_interval, two minutes (the relay
// then keeps rows 2×2m+1s after their ack); below 10 ms the embedded server
// would do little but fsync.
const (
	MinNATSSyncInterval = 10 * time.Millisecond
	MaxNATSSyncInterval = 2 * time.Minute
)

// The range of CAIRN_IDEMPOTENCY_RETENTION: long enough to cover a client's
// retries, short enough that the table of keys stays bounded.
const (
	MinIdempotencyRetention = time.Minute
	MaxIdempotencyRetention = 365 * 24 * time.Hour
)

// The range of CAIRN_ORDERS_STEP_TIMEOUT: long enough for a participant
// under load to answer, short enough that a customer learns the outcome.
const (
	MinOrdersStepTimeout = 100 * time.Millisecond
	MaxOrdersStepTimeout = 24 * time.Hour
)

// Default returns the configuration used when nothing is set: everything
// embedded, under ./data.
func Default() Config {
	return Config{
		HTTPAddr:         ":8080",
		DataDir:          "./data",
		DatabaseMaxConns: 32,
		NATSListen:       "127.0.0.1:4222",
		NATSSyncInterval: time.Second,
		NATSReplicas:     1,
		// Load derives it from CAIRN_HTTP_ADDR when it is not set.
		PublicURL:       "http://localhost:8080",
		LogLevel:        "info",
		LogFormat:       "text",
		ShutdownTimeout: 30 * time.Second,
		// Stripe's: a key is remembered for 24 hours, then a request
		// with it is a new request.
		IdempotencyRetention: 24 * time.Hour,
		Lake:                 "on",
		LakeExportInterval:   5 * time.Minute,
		LakeExportPeriod:     time.Hour,
		// The built-in payment gateway declines amounts above 1,000.00
		// (in minor units), so `make run` shows declines too.
		PaymentsDeclineAbove: 100_000,
		OrdersStepTimeout:    30 * time.Second,
	}
}

// LakeOn reports whether published events are moved into the lake (else
// they are deleted after publishing, as before the lake).
func (c Config) LakeOn() bool { return c.Lake == "on" }

// LakeExportTarget is where the exporter writes: CAIRN_LAKE_EXPORT_URL, or
// the folder lake/ under the data directory.
func (c Config) LakeExportTarget() string {
	if c.LakeExportURL != "" {
		return c.LakeExportURL
	}
	return "file://" + filepath.ToSlash(filepath.Join(absDir(c.DataDir), "lake"))
}

func absDir(dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return dir
}

// EmbeddedPostgres reports whether Cairn must start its own PostgreSQL.
func (c Config) EmbeddedPostgres() bool { return c.DatabaseURL == "" }

// EmbeddedNATS reports whether Cairn must start its own NATS server.
func (c Config) EmbeddedNATS() bool { return c.NATSURL == "" }

// SlogLevel returns the parsed log level; call Validate first.
func (c Config) SlogLevel() slog.Level {
	var l slog.Level
	_ = l.UnmarshalText([]byte(c.LogLevel))
	return l
}

// Validate reports every bad setting at once, each naming its variable and
// what it accepts.
func (c Config) Validate() error {
	var errs []error
	bad := func(env, value, accepted string) {
		errs = append(errs, fmt.Errorf("%s=%q is not valid: %s", env, value, accepted))
	}
	if _, port, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		bad("CAIRN_HTTP_ADDR", c.HTTPAddr, "want host:port or :port, e.g. :8080")
	} else if !validPort(port) {
		bad("CAIRN_HTTP_ADDR", c.HTTPAddr, "the port must be a number from 0 to 65535, e.g. :8080")
	}
	if strings.TrimSpace(c.DataDir) == "" {
		bad("CAIRN_DATA_DIR", c.DataDir, "want a directory path, e.g. ./data")
	}
	if u, err := url.Parse(c.DatabaseURL); c.DatabaseURL != "" && (err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql")) {
		bad("CAIRN_DATABASE_URL", mask(c.DatabaseURL), "want postgres://user:password@host:5432/db, or empty for the embedded server")
	}
	if c.DatabaseMaxConns < 2 || c.DatabaseMaxConns > 1000 {
		bad("CAIRN_DATABASE_MAX_CONNS", strconv.Itoa(c.DatabaseMaxConns), "want an integer from 2 to 1000")
	}
	if c.NATSURL != "" && !hasScheme(c.NATSURL, "nats", "tls", "ws", "wss") {
		bad("CAIRN_NATS_URL", mask(c.NATSURL), "want nats://host:4222 (several separated by commas), or empty for the embedded server")
	}
	if host, port, err := net.SplitHostPort(c.NATSListen); err != nil || port == "" || (host != "" && net.ParseIP(host) == nil && host != "localhost") {
		bad("CAIRN_NATS_LISTEN", c.NATSListen, "want ip:port, e.g. 127.0.0.1:4222")
	} else if !validPort(port) {
		bad("CAIRN_NATS_LISTEN", c.NATSListen, "the port must be a number from 0 to 65535, e.g. 127.0.0.1:4222")
	}
	if _, err := c.Subscribers(); err != nil {
		errs = append(errs, err)
	}
	if c.NATSSyncInterval < MinNATSSyncInterval || c.NATSSyncInterval > MaxNATSSyncInterval {
		bad("CAIRN_NATS_SYNC_INTERVAL", c.NATSSyncInterval.String(), "want a duration from 10ms to 2m (NATS's default): the server's sync_interval")
	}
	if c.NATSReplicas < 1 || c.NATSReplicas > 5 {
		bad("CAIRN_NATS_REPLICAS", strconv.Itoa(c.NATSReplicas), "want 1 to 5")
	}
	if _, err := c.SecretKeyBytes(); err != nil {
		bad("CAIRN_SECRET_KEY", "****", err.Error()+": want 32 random bytes in base64 (`openssl rand -base64 32`), or empty for a key Cairn makes itself")
	}
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("CAIRN_PUBLIC_URL", c.PublicURL, "want an absolute http(s) URL, e.g. http://localhost:8080")
	}
	if c.SMTPURL != "" && !hasScheme(c.SMTPURL, "smtp", "smtps") {
		bad("CAIRN_SMTP_URL", mask(c.SMTPURL), "want smtp://user:password@host:587 (STARTTLS required; ?tls=opportunistic or ?tls=none to lower it) or smtps://…:465, or empty for the mailbox")
	}
	var l slog.Level
	if l.UnmarshalText([]byte(c.LogLevel)) != nil {
		bad("CAIRN_LOG_LEVEL", c.LogLevel, "want one of debug, info, warn, error")
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("CAIRN_LOG_FORMAT", c.LogFormat, "want text or json")
	}
	if c.ShutdownTimeout < time.Second || c.ShutdownTimeout > 10*time.Minute {
		bad("CAIRN_SHUTDOWN_TIMEOUT", c.ShutdownTimeout.String(), "want a duration from 1s to 10m")
	}
	if c.IdempotencyRetention < MinIdempotencyRetention || c.IdempotencyRetention > MaxIdempotencyRetention {
		bad("CAIRN_IDEMPOTENCY_RETENTION", c.IdempotencyRetention.String(), "want a duration from 1m to 8760h (a year), e.g. 24h")
	}
	if c.Lake != "on" && c.Lake != "off" {
		bad("CAIRN_LAKE", c.Lake, "want on or off")
	}
	if c.LakeExportURL != "" && !hasScheme(c.LakeExportURL, "file", "s3") && !strings.HasPrefix(c.LakeExportURL, "file:///") {
		bad("CAIRN_LAKE_EXPORT_URL", mask(c.LakeExportURL), "want file:///absolute/folder or s3://bucket/prefix?region=…, or empty for <data dir>/lake")
	}
	if c.LakeExportInterval != 0 && (c.LakeExportInterval < time.Second || c.LakeExportInterval > 24*time.Hour) {
		bad("CAIRN_LAKE_EXPORT_INTERVAL", c.LakeExportInterval.String(), "want a duration from 1s to 24h, or 0 to export nothing")
	}
	if c.LakeExportPeriod != time.Hour && c.LakeExportPeriod != 24*time.Hour {
		bad("CAIRN_LAKE_EXPORT_PERIOD", c.LakeExportPeriod.String(), "want 1h or 24h: the span of events one file holds")
	}
	if c.EventsMaxAge != 0 && c.EventsMaxAge < time.Hour {
		bad("CAIRN_EVENTS_MAX_AGE", c.EventsMaxAge.String(), "want 0 (keep public events for ever) or a duration of at least 1h, e.g. 720h")
	}
	if c.PaymentsURL != "" && !hasScheme(c.PaymentsURL, "http", "https") {
		bad("CAIRN_PAYMENTS_URL", mask(c.PaymentsURL), "want the payment gateway's base URL, http(s)://host:port[/path], or empty for the built-in simulated gateway")
	}
	if c.PaymentsDeclineAbove < 0 {
		bad("CAIRN_PAYMENTS_DECLINE_ABOVE", strconv.FormatInt(c.PaymentsDeclineAbove, 10), "want a whole number of minor units, 0 or more: the simulated gateway declines larger amounts")
	}
	if c.OrdersStepTimeout < MinOrdersStepTimeout || c.OrdersStepTimeout > MaxOrdersStepTimeout {
		bad("CAIRN_ORDERS_STEP_TIMEOUT", c.OrdersStepTimeout.String(), "want a duration from 100ms to 24h, e.g. 30s")
	}
	return errors.Join(errs...)
}

// validPort accepts 0 (any free port) to 65535.
func validPort(port string) bool {
	n, err := strconv.Atoi(port)
	return err == nil && n >= 0 && n <= 65535
}

func hasScheme(raw string, schemes ...string) bool {
	for _, one := range strings.Split(raw, ",") {
		u, err := url.Parse(strings.TrimSpace(one))
		if err != nil || u.Host == "" {
			return false
		}
		ok := false
		for _, s := range schemes {
			ok = ok || u.Scheme == s
		}
		if !ok {
			return false
		}
	}
	return true
}

// Getenv is how Load reads the environment; tests pass a map's lookup.
type Getenv func(string) (string, bool)

// Load reads the configuration from the environment over the defaults. It
// fails on values it cannot parse; call Validate for range checks.
func Load(getenv Getenv) (Config, error) {
	if getenv == nil {
		getenv = os.LookupEnv
	}
	c := Default()
	var errs []error
	str := func(env string, dst *string) {
		if v, ok := getenv(env); ok {
			*dst = strings.TrimSpace(v)
		}
	}
	num := func(env string, dst *int) {
		if v, ok := getenv(env); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q is not valid: want an integer", env, v))
				return
			}
			*dst = n
		}
	}
	num64 := func(env string, dst *int64) {
		if v, ok := getenv(env); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q is not valid: want an integer", env, v))
				return
			}
			*dst = n
		}
	}
	dur := func(env string, dst *time.Duration) {
		if v, ok := getenv(env); ok {
			d, err := time.ParseDuration(strings.TrimSpace(v))
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q is not valid: want a duration such as 500ms, 5s, 1m", env, v))
				return
			}
			*dst = d
		}
	}
	str("CAIRN_HTTP_ADDR", &c.HTTPAddr)
	str("CAIRN_DATA_DIR", &c.DataDir)
	str("CAIRN_DATABASE_URL", &c.DatabaseURL)
	num("CAIRN_DATABASE_MAX_CONNS", &c.DatabaseMaxConns)
	str("CAIRN_NATS_URL", &c.NATSURL)
	str("CAIRN_NATS_LISTEN", &c.NATSListen)
	str("CAIRN_NATS_SUBSCRIBER_PASSWORD", &c.NATSSubscriberPassword)
	str("CAIRN_NATS_SUBSCRIBERS", &c.NATSSubscribers)
	str("CAIRN_NATS_SUBSCRIBERS_FILE", &c.NATSSubscribersFile)
	dur("CAIRN_NATS_SYNC_INTERVAL", &c.NATSSyncInterval)
	num("CAIRN_NATS_REPLICAS", &c.NATSReplicas)
	str("CAIRN_ADMIN_TOKEN", &c.AdminToken)
	str("CAIRN_SECRET_KEY", &c.SecretKey)
	if _, set := getenv("CAIRN_PUBLIC_URL"); set {
		str("CAIRN_PUBLIC_URL", &c.PublicURL)
	} else {
		c.PublicURL = publicURLOf(c.HTTPAddr)
	}
	str("CAIRN_SMTP_URL", &c.SMTPURL)
	str("CAIRN_LOG_LEVEL", &c.LogLevel)
	str("CAIRN_LOG_FORMAT", &c.LogFormat)
	dur("CAIRN_SHUTDOWN_TIMEOUT", &c.ShutdownTimeout)
	dur("CAIRN_IDEMPOTENCY_RETENTION", &c.IdempotencyRetention)
	str("CAIRN_LAKE", &c.Lake)
	str("CAIRN_LAKE_EXPORT_URL", &c.LakeExportURL)
	dur("CAIRN_LAKE_EXPORT_INTERVAL", &c.LakeExportInterval)
	dur("CAIRN_LAKE_EXPORT_PERIOD", &c.LakeExportPeriod)
	dur("CAIRN_EVENTS_MAX_AGE", &c.EventsMaxAge)
	str("CAIRN_PAYMENTS_URL", &c.PaymentsURL)
	num64("CAIRN_PAYMENTS_DECLINE_ABOVE", &c.PaymentsDeclineAbove)
	dur("CAIRN_ORDERS_STEP_TIMEOUT", &c.OrdersStepTimeout)
	return c, errors.Join(errs...)
}
