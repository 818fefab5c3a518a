package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/cairn-dev/cairn/config"
	"github.com/cairn-dev/cairn/migrations"
	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/outbox/broker"
	"github.com/cairn-dev/cairn/outbox/projection"
	"github.com/cairn-dev/cairn/outbox/saga"
	"github.com/cairn-dev/cairn/pgserver"
)

// MigrateCommand runs `cairn migrate up|down <platform|module>|status` and
// returns the exit code.
func MigrateCommand(ctx context.Context, cfg config.Config, log *slog.Logger, args []string, stdout, stderr io.Writer) int {
	defs := Modules()
	names := []string{migrations.PlatformName, saga.MigrationsName, projection.MigrationsName}
	for _, d := range defs {
		names = append(names, d.Name)
	}
	ok := len(args) == 1 && (args[0] == "up" || args[0] == "status") || len(args) == 2 && args[0] == "down"
	if !ok {
		fmt.Fprintf(stderr, "usage: cairn migrate up | down <%s> | status\n", strings.Join(names, "|"))
		return 2
	}
	in, err := openCommandDatabase(ctx, cfg, log)
	if err != nil {
		log.Error("migrate", "err", err)
		return 1
	}
	defer in.closeWithin(cfg.ShutdownTimeout)
	db := in.sqlDB()
	defer db.Close()
	r, err := Migrator(db, defs)
	if err != nil {
		log.Error("migrate", "err", err)
		return 1
	}
	switch args[0] {
	case "up":
		res, err := r.Up(ctx)
		for _, m := range res {
			fmt.Fprintf(stdout, "applied %s/%s (%s)\n", m.Source, m.Path, m.Duration.Round(time.Millisecond))
		}
		if err != nil {
			log.Error("migrate up", "err", err)
			return 1
		}
		if len(res) == 0 {
			fmt.Fprintln(stdout, "no pending migrations")
		}
	case "down":
		m, err := r.Down(ctx, args[1])
		if err != nil {
			log.Error("migrate down", "err", err)
			return 1
		}
		fmt.Fprintf(stdout, "rolled back %s/%s\n", m.Source, m.Path)
	case "status":
		st, err := r.Status(ctx)
		if err != nil {
			log.Error("migrate status", "err", err)
			return 1
		}
		for _, s := range st {
			at := "pending"
			if s.Applied {
				at = "applied " + s.AppliedAt.Format(time.RFC3339)
			}
			fmt.Fprintf(stdout, "%-40s %s\n", s.Source+"/"+s.Path, at)
		}
	}
	return 0
}

// ModuleCommands lists what the modules offer on the command line, one
// "verb module  summary" line each, for cairn's usage.
func ModuleCommands() string {
	var b strings.Builder
	for _, d := range Modules() {
		for _, c := range d.Commands {
			fmt.Fprintf(&b, "  cairn %-22s %s\n", c.Name+" "+d.Name, c.Summary)
		}
	}
	return b.String()
}

// OffersCommand reports whether some module offers the verb.
func OffersCommand(verb string) bool {
	_, offers := moduleCommand(verb, "")
	return len(offers) > 0
}

// moduleCommand finds module's command verb, and lists who offers verb.
func moduleCommand(verb, module string) (cmd *modules.Command, offers []string) {
	for _, d := range Modules() {
		for i, c := range d.Commands {
			if c.Name == verb {
				offers = append(offers, d.Name)
				if d.Name == module {
					cmd = &d.Commands[i]
				}
			}
		}
	}
	return cmd, offers
}

// ModuleCommand runs `cairn <verb> <module> [args]`, a command a module
// offers, against the database, and returns the exit code.
func ModuleCommand(ctx context.Context, cfg config.Config, log *slog.Logger, verb string, args []string, stdout, stderr io.Writer) int {
	module := ""
	if len(args) > 0 {
		module = args[0]
	}
	cmd, offers := moduleCommand(verb, module)
	if cmd == nil {
		fmt.Fprintf(stderr, "usage: cairn %s %s\n", verb, strings.Join(offers, "|"))
		return 2
	}
	in, err := openCommandDatabase(ctx, cfg, log)
	if err != nil {
		log.Error(verb, "err", err)
		return 1
	}
	defer in.closeWithin(cfg.ShutdownTimeout)
	if err := cmd.Run(ctx, in.pool, args[1:], stdout); err != nil {
		log.Error(verb+" "+module, "err", err)
		return 1
	}
	return 0
}

// openCommandDatabase opens the database for a command. With the embedded
// PostgreSQL, when a Cairn already runs on the data directory (make run in
// another terminal), it uses that server: starting a second one there
// would fail. Otherwise it starts the server for the command's duration.
func openCommandDatabase(ctx context.Context, cfg config.Config, log *slog.Logger) (*infra, error) {
	if !cfg.EmbeddedPostgres() {
		return openDatabase(ctx, cfg, log, nil)
	}
	dir, err := filepath.Abs(filepath.Join(cfg.DataDir, "postgres"))
	if err != nil {
		return nil, fmt.Errorf("CAIRN_DATA_DIR: %w", err)
	}
	running, err := pgserver.Running(ctx, dir)
	if err != nil {
		return openDatabase(ctx, cfg, log, nil)
	}
	log.Info("using the PostgreSQL server of the Cairn running on the data directory", "data_dir", dir)
	cfg.DatabaseURL = running
	return openDatabase(ctx, cfg, log, nil)
}

// DBCommand runs `cairn db url [--password]`: it prints the URL of Cairn's
// database, for psql and other tools: the embedded server's (it answers
// while a Cairn runs on the data directory) or CAIRN_DATABASE_URL. The
// password is masked unless --password asks for it.
func DBCommand(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer) int {
	show := len(args) == 2 && args[1] == "--password"
	if len(args) == 0 || args[0] != "url" || len(args) > 1 && !show {
		fmt.Fprintln(stderr, "usage: cairn db url [--password]")
		return 2
	}
	raw := cfg.DatabaseURL
	if cfg.EmbeddedPostgres() {
		dir, err := filepath.Abs(filepath.Join(cfg.DataDir, "postgres"))
		if err == nil {
			raw, err = pgserver.URLOf(dir)
		}
		if err != nil {
			fmt.Fprintf(stderr, "cairn: %v\n", err)
			return 1
		}
		if _, err := pgserver.Running(ctx, dir); err != nil {
			fmt.Fprintln(stderr, "cairn: no Cairn is running on "+cfg.DataDir+": the URL works while one does (make run)")
		}
	}
	if !show {
		u, err := url.Parse(raw)
		if err == nil && u.User != nil {
			if _, has := u.User.Password(); has {
				u.User = url.UserPassword(u.User.Username(), "xxxx")
				raw = strings.Replace(u.String(), "xxxx", "****", 1)
			}
		}
		fmt.Fprintln(stderr, "cairn: password masked; `psql \"$(bin/cairn db url --password)\"` opens psql")
	}
	fmt.Fprintln(stdout, raw)
	return 0
}

// NATSCommand runs `cairn nats users`: it prints the authorization block of
// a NATS server configuration for your own server, with Cairn's user (the
// password of CAIRN_NATS_URL, if it has one) and each outside system of
// CAIRN_NATS_SUBSCRIBERS (_FILE, and CAIRN_NATS_SUBSCRIBER_PASSWORD) with
// its permissions, passwords bcrypt-hashed.
func NATSCommand(cfg config.Config, args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 || args[0] != "users" {
		fmt.Fprintln(stderr, "usage: cairn nats users")
		return 2
	}
	subs, err := cfg.Subscribers()
	if err != nil {
		fmt.Fprintf(stderr, "cairn: %v\n", err)
		return 2
	}
	if len(subs) == 0 {
		fmt.Fprintln(stderr, "cairn: no outside system configured: set CAIRN_NATS_SUBSCRIBERS=name:password,…")
	}
	cairnPassword := "CHANGE-ME"
	if u, err := url.Parse(strings.Split(cfg.NATSURL, ",")[0]); err == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok {
			cairnPassword = pw
		}
	}
	systems := make([]broker.System, len(subs))
	for i, s := range subs {
		systems[i] = broker.System{Name: s.Name, Password: s.Password}
	}
	text, err := broker.AuthorizationConfig(cairnPassword, systems)
	if err != nil {
		fmt.Fprintf(stderr, "cairn: %v\n", err)
		return 1
	}
	fmt.Fprint(stdout, text)
	return 0
}
