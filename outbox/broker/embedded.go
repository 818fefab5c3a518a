package broker

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"golang.org/x/crypto/bcrypt"
)

// EmbeddedConfig configures the in-process NATS server.
type EmbeddedConfig struct {
	// StoreDir holds JetStream's file store.
	StoreDir string
	// Listen is the client address external subscribers dial, e.g.
	// 127.0.0.1:4222; port 0 picks a free one.
	Listen string
	// SyncInterval is how often JetStream fsyncs its files. The relay keeps
	// outbox rows until at least this long after their publish was acked,
	// so an OS crash cannot lose an event that left the outbox.
	SyncInterval time.Duration
	// SubscriberPassword enables the read-only "subscriber" user.
	SubscriberPassword string
	// InternalPassword is the password of the "cairn" user Cairn itself
	// connects as; random when empty (tests fix it to restart a server).
	InternalPassword string
	Logger           *slog.Logger
}

// Embedded is a running in-process NATS server with JetStream.
type Embedded struct {
	srv      *server.Server
	password string // of the internal "cairn" user
}

// SubscriberUser is the read-only user external systems log in as.
const SubscriberUser = "subscriber"

// StartEmbedded starts the server and waits until it accepts clients.
func StartEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	host, portStr, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("broker: listen address %q: %w", cfg.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("broker: listen port %q: %w", portStr, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	pw := cfg.InternalPassword
	if pw == "" {
		if pw, err = randomPassword(); err != nil {
			return nil, err
		}
	}
	// The server is given bcrypt hashes, never the passwords themselves.
	cairnHash, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		return nil, fmt.Errorf("broker: hash password: %w", err)
	}
	users := []*server.User{{Username: "cairn", Password: string(cairnHash)}}
	if cfg.SubscriberPassword != "" {
		subHash, err := bcrypt.GenerateFromPassword([]byte(cfg.SubscriberPassword), bcrypt.DefaultCost)
		if err != nil {
			return nil, fmt.Errorf("broker: hash subscriber password: %w", err)
		}
		users = append(users, &server.User{
			Username:    SubscriberUser,
			Password:    string(subHash),
			Permissions: SubscriberPermissions(),
		})
	}
	opts := &server.Options{
		ServerName:         "cairn",
		Host:               host,
		Port:               port,
		JetStream:          true,
		StoreDir:           cfg.StoreDir,
		SyncInterval:       cfg.SyncInterval,
		Users:              users,
		NoSigs:             true,
		MaxPayload:         8 << 20,
		JetStreamMaxMemory: 256 << 20,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("broker: embedded NATS: %w", err)
	}
	if cfg.Logger != nil {
		srv.SetLoggerV2(&slogAdapter{log: cfg.Logger}, false, false, false)
	}
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("broker: embedded NATS did not start listening on %s within 30s (is the port taken? set CAIRN_NATS_LISTEN)", cfg.Listen)
	}
	return &Embedded{srv: srv, password: pw}, nil
}

// ClientURL is the address external clients use.
func (e *Embedded) ClientURL() string { return e.srv.ClientURL() }

// Connect opens an in-process connection as the internal "cairn" user.
func (e *Embedded) Connect(name string, log *slog.Logger, opts ...nats.Option) (*nats.Conn, error) {
	return Connect(e.srv.ClientURL(), name, log, append([]nats.Option{nats.UserInfo("cairn", e.password), nats.InProcessServer(e.srv)}, opts...)...)
}

// Shutdown stops the server, flushing JetStream's files.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

func randomPassword() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("broker: random password: %w", err)
	}
	return hex.EncodeToString(b), nil
}

type slogAdapter struct{ log *slog.Logger }

func (a *slogAdapter) Noticef(format string, v ...any) {
	a.log.Debug(fmt.Sprintf(format, v...), "component", "nats")
}
func (a *slogAdapter) Warnf(format string, v ...any) {
	a.log.Warn(fmt.Sprintf(format, v...), "component", "nats")
}
func (a *slogAdapter) Fatalf(format string, v ...any) {
	a.log.Error(fmt.Sprintf(format, v...), "component", "nats")
}
func (a *slogAdapter) Errorf(format string, v ...any) {
	a.log.Error(fmt.Sprintf(format, v...), "component", "nats")
}
func (a *slogAdapter) Debugf(format string, v ...any) {
	a.log.Debug(fmt.Sprintf(format, v...), "component", "nats")
}
func (a *slogAdapter) Tracef(string, ...any) {}

// URLWithCredentials is the client URL with the internal user's password,
// for a Cairn process of its own started against this server (tests).
func (e *Embedded) URLWithCredentials() string {
	u := e.srv.ClientURL()
	return strings.Replace(u, "nats://", "nats://cairn:"+e.password+"@", 1)
}
