package broker

import (
	"context"
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
	// SubscriberPassword enables the read-only "subscriber" user, one more
	// outside system (SubscriberUser).
	SubscriberPassword string
	// Systems are the outside systems, each a user of its own with
	// SystemPermissions.
	Systems []System
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

// StartEmbedded starts the server and waits until it accepts clients (see
// StartEmbeddedContext).
func StartEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	return StartEmbeddedContext(context.Background(), cfg)
}

// startWithin bounds how long the server may take to accept clients: a
// JetStream store with much to recover takes a while.
const startWithin = 30 * time.Second

// StartEmbeddedContext starts the server and waits until it accepts
// clients. It gives up at once, with the server's reason, when the server
// cannot listen (the port is taken, the address is not this machine's) or
// JetStream cannot start, and when ctx ends (Ctrl-C during start-up).
func StartEmbeddedContext(ctx context.Context, cfg EmbeddedConfig) (*Embedded, error) {
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
	users := []*server.User{{Username: internalUser, Password: string(cairnHash)}}
	systems := cfg.Systems
	if cfg.SubscriberPassword != "" {
		systems = append([]System{{Name: SubscriberUser, Password: cfg.SubscriberPassword}}, systems...)
	}
	outside, err := systemUsers(systems)
	if err != nil {
		return nil, err
	}
	users = append(users, outside...)
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
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	fatal := make(chan string, 1)
	srv.SetLoggerV2(&slogAdapter{log: log, fatal: fatal}, false, false, false)
	started := make(chan struct{})
	go func() {
		defer close(started)
		srv.Start()
	}()
	deadline := time.Now().Add(startWithin)
	for {
		var why error
		select {
		case msg := <-fatal:
			why = fmt.Errorf("broker: embedded NATS cannot start on %s: %s", cfg.Listen, msg)
		case <-ctx.Done():
			why = fmt.Errorf("broker: embedded NATS start-up interrupted: %w", ctx.Err())
		default:
			if srv.ReadyForConnections(100 * time.Millisecond) {
				return &Embedded{srv: srv, password: pw}, nil
			}
			if time.Now().After(deadline) {
				why = fmt.Errorf("broker: embedded NATS did not accept clients on %s within %s", cfg.Listen, startWithin)
			}
		}
		if why != nil {
			// Start may not have run yet (a start-up cancelled at once):
			// shut down before it ends and it would go on to open the
			// store and listen, a server nobody stops. Start returns once
			// it has set everything going.
			select {
			case <-started:
			case <-time.After(startWithin):
			}
			srv.Shutdown()
			srv.WaitForShutdown()
			return nil, why
		}
	}
}

// ClientURL is the address external clients use.
func (e *Embedded) ClientURL() string { return e.srv.ClientURL() }

// Connect opens an in-process connection as the internal "cairn" user.
func (e *Embedded) Connect(name string, log *slog.Logger, opts ...nats.Option) (*nats.Conn, error) {
	return Connect(e.srv.ClientURL(), name, log, append([]nats.Option{nats.UserInfo(internalUser, e.password), nats.InProcessServer(e.srv)}, opts...)...)
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

// URLWithCredentials is the client URL with the internal user's password,
// for a Cairn process of its own started against this server (tests).
func (e *Embedded) URLWithCredentials() string {
	u := e.srv.ClientURL()
	return strings.Replace(u, "nats://", "nats://cairn:"+e.password+"@", 1)
}
