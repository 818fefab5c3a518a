// Package pgserver runs a private PostgreSQL server as a child process of
// Cairn, built from the PostgreSQL binaries already installed on the machine.
//
// It exists so that Cairn can start with zero configuration: on first run it
// creates a data directory, a superuser with a random password and the
// "cairn" database, and afterwards it simply starts that server again. The
// server is reachable only through a Unix socket inside its data directory
// (or, when that path is too long for a socket, a loopback TCP port), so
// several instances can run side by side without sharing anything. Operators
// who want their own server set CAIRN_DATABASE_URL instead and never reach
// this package.
package pgserver

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Config describes the server to run.
type Config struct {
	// DataDir is this server's data directory, e.g. "./data/postgres". It is
	// created (mode 0700) if missing and initialized on first start. The
	// sibling files DataDir+".password" and DataDir+".log" hold the
	// superuser password and the server log.
	DataDir string
	// BinDir holds postgres and initdb; found with FindBinDir if empty.
	BinDir string
	// Logger receives pgserver's own messages (not the server log);
	// slog.Default() if nil.
	Logger *slog.Logger
	// Settings are extra server settings passed as -c name=value; they
	// override the defaults, except the listen settings, which URL depends on.
	Settings map[string]string
}

const (
	readyTimeout       = 60 * time.Second
	readyPollInterval  = 50 * time.Millisecond
	defaultStopTimeout = 30 * time.Second
	// killWait bounds the wait after SIGKILL, which only fails to end a
	// process stuck in uninterruptible I/O.
	killWait = 30 * time.Second
)

// reservedSettings are chosen by pgserver because URL, AdminURL and the
// collision-freedom between instances depend on them.
var reservedSettings = []string{"listen_addresses", "port", "unix_socket_directories", "unix_socket_permissions"}

// defaultSettings are passed explicitly rather than trusted from
// postgresql.conf so that durability never depends on a file somebody might
// have edited.
var defaultSettings = map[string]string{
	"fsync":              "on",
	"synchronous_commit": "on",
	"full_page_writes":   "on",
	"shared_buffers":     "256MB",
	"max_connections":    "200",
	"wal_level":          "replica",
	"log_min_messages":   "warning",
	// The outbox is a queue: rows live seconds. Autovacuum's default
	// one-minute nap lets 100k+ dead rows pile up under load.
	"autovacuum_naptime": "10s",
}

// Server is a running (or stopped) PostgreSQL child process.
type Server struct {
	dataDir  string
	binDir   string
	logPath  string
	log      *slog.Logger
	account  *osAccount // nil: run as ourselves
	password string
	listen   listenMode
	settings map[string]string

	mu   sync.Mutex
	proc *process // nil while stopped
}

// process is one run of the postgres binary.
type process struct {
	cmd     *exec.Cmd
	exited  chan struct{} // closed once cmd.Wait returned
	waitErr error         // valid after exited is closed
	logFrom int64         // log offset at launch, for error reports
}

// Start initializes the data directory if needed, starts the server and
// waits until it accepts connections and the "cairn" database exists.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("pgserver: Config.DataDir is empty")
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("resolve data directory %q: %w", cfg.DataDir, err)
	}
	binDir := cfg.BinDir
	if binDir == "" {
		if binDir, err = FindBinDir(); err != nil {
			return nil, err
		}
	} else if !isBinDir(binDir) {
		return nil, fmt.Errorf("%w in BinDir %s (it must contain postgres and initdb)", ErrBinariesNotFound, binDir)
	}
	settings := maps.Clone(defaultSettings)
	for k, v := range cfg.Settings {
		if slices.Contains(reservedSettings, strings.ToLower(k)) {
			return nil, fmt.Errorf("pgserver: setting %q cannot be overridden: the connection URL depends on it", k)
		}
		settings[k] = v
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "pgserver", "data_dir", dataDir)

	account, err := serverAccount()
	if err != nil {
		return nil, err
	}
	if err := checkTraversable(dataDir, account); err != nil {
		return nil, err
	}
	if err := prepareDataDir(dataDir, log); err != nil {
		return nil, err
	}
	listen, err := chooseListen(dataDir)
	if err != nil {
		return nil, err
	}
	if listen.tcp {
		log.Info("data directory path too long for a Unix socket; listening on loopback TCP instead",
			"socket_path_bytes", len(socketPath(dataDir)), "port", listen.port)
	}
	s := &Server{
		dataDir:  dataDir,
		binDir:   binDir,
		logPath:  dataDir + ".log",
		log:      log,
		account:  account,
		listen:   listen,
		settings: settings,
	}

	// Ownership must be right before initdb (which writes into the
	// directory as the server's account) as well as before every launch.
	if err := chownTree(dataDir, account); err != nil {
		return nil, err
	}
	_, err = os.Stat(filepath.Join(dataDir, "PG_VERSION"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if s.password, err = s.initCluster(ctx); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, fmt.Errorf("check whether %s is initialized: %w", dataDir, err)
	default:
		if s.password, err = readPassword(dataDir); err != nil {
			return nil, err
		}
	}

	if err := s.launch(ctx); err != nil {
		return nil, err
	}
	if err := s.ensureDatabase(ctx); err != nil {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), defaultStopTimeout)
		defer cancel()
		return nil, errors.Join(err, s.Stop(stopCtx))
	}
	s.log.Info("PostgreSQL ready", "url", s.redactedURL())
	return s, nil
}

// prepareDataDir creates the data directory and tightens its mode, because
// postgres refuses a data directory that others can read.
func prepareDataDir(dataDir string, log *slog.Logger) error {
	if err := mkdirParents(dataDir); err != nil {
		return fmt.Errorf("create parents of data directory: %w", err)
	}
	if err := os.Mkdir(dataDir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create data directory: %w", err)
	}
	fi, err := os.Stat(dataDir)
	if err != nil {
		return fmt.Errorf("stat data directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("data directory %s is not a directory", dataDir)
	}
	if perm := fi.Mode().Perm(); perm != 0o700 && perm != 0o750 {
		log.Info("restricting data directory permissions to 0700 as PostgreSQL requires", "was", perm)
		if err := os.Chmod(dataDir, 0o700); err != nil {
			return fmt.Errorf("restrict permissions of data directory: %w", err)
		}
	}
	return nil
}

// URL returns a pgx-compatible connection URL for the "cairn" database.
// It contains the superuser password.
func (s *Server) URL() string { return s.AdminURL(appDB) }

// AdminURL returns a connection URL like URL's, but for database db.
func (s *Server) AdminURL(db string) string {
	return connURL(s.password, s.dataDir, s.listen, db)
}

func (s *Server) redactedURL() string {
	return connURL("REDACTED", s.dataDir, s.listen, appDB)
}

func (s *Server) openLog() (*os.File, int64, error) {
	f, err := os.OpenFile(s.logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, 0, fmt.Errorf("open PostgreSQL log: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("stat PostgreSQL log: %w", err)
	}
	return f, fi.Size(), nil
}

// errShmInUse is a start refused because processes of an earlier server on
// the data directory are still attached to its shared memory.
var errShmInUse = errors.New("processes of an earlier server still hold its shared memory")

// shmRetryPause is how long launch waits before its one retry after
// errShmInUse: the processes are exiting (Kill waits for its own, so this
// is for an earlier server that crashed on its own), and a backend that
// learns of its postmaster's death exits within moments.
const shmRetryPause = time.Second

// launch starts postgres directly rather than through pg_ctl so that it is
// our child: we get its exit status, and Pdeathsig ties its life to ours.
// If processes of an earlier server still hold its shared memory, it tries
// once more after shmRetryPause.
func (s *Server) launch(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return fmt.Errorf("PostgreSQL for %s is already running", s.dataDir)
	}
	err := s.launchOnce(ctx)
	if !errors.Is(err, errShmInUse) {
		return err
	}
	s.log.Warn("processes of an earlier PostgreSQL still hold its shared memory; starting again shortly", "in", shmRetryPause)
	select {
	case <-ctx.Done():
		return errors.Join(err, ctx.Err())
	case <-time.After(shmRetryPause):
	}
	return s.launchOnce(ctx)
}

// launchOnce is one attempt of launch; s.mu is held.
func (s *Server) launchOnce(ctx context.Context) error {
	if err := clearStaleLocks(s.dataDir, s.log); err != nil {
		return err
	}
	if err := chownTree(s.dataDir, s.account); err != nil {
		return err
	}

	settings := listenSettings(s.dataDir, s.listen)
	for k, v := range s.settings {
		settings[k] = v
	}
	args := []string{"-D", s.dataDir}
	for _, k := range slices.Sorted(maps.Keys(settings)) {
		args = append(args, "-c", k+"="+settings[k])
	}

	logFile, offset, err := s.openLog()
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(s.binDir, "postgres"), args...)
	cmd.Dir = s.dataDir
	cmd.Env = childEnv()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = childSysProcAttr(s.account)
	err = startOnStableThread(cmd)
	// The child holds its own copy of the descriptor.
	if cerr := logFile.Close(); err == nil && cerr != nil {
		s.log.Warn("closing our handle of the PostgreSQL log failed", "err", cerr)
	}
	if err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	p := &process{cmd: cmd, exited: make(chan struct{}), logFrom: offset}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	s.log.Debug("postgres started", "pid", cmd.Process.Pid, "log", s.logPath)

	if err := s.waitReady(ctx, p); err != nil {
		// Never leave a half-started server behind: it would hold the data
		// directory and make the next attempt fail too.
		children, kerr := killTree(cmd.Process)
		if kerr != nil {
			err = errors.Join(err, kerr)
		}
		<-p.exited
		waitChildrenGone(children, time.Now().Add(killWait))
		tail := logTail(s.logPath, offset)
		if strings.Contains(tail, "pre-existing shared memory block") {
			err = errors.Join(errShmInUse, err)
		}
		return fmt.Errorf("%w; last lines of %s:\n%s", err, s.logPath, tail)
	}
	s.proc = p
	return nil
}

// waitReady polls with real connections instead of pg_isready semantics
// because only a completed login proves recovery has finished and the
// password works.
func (s *Server) waitReady(ctx context.Context, p *process) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	url := s.AdminURL("postgres")
	for {
		conn, err := pgx.Connect(ctx, url)
		if err == nil {
			return conn.Close(ctx)
		}
		// Errors reported by the server itself are final, except
		// cannot_connect_now, which means "still starting or recovering".
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code != "57P03" {
			return fmt.Errorf("PostgreSQL started but refused our login: %w", err)
		}
		select {
		case <-p.exited:
			return fmt.Errorf("postgres exited during startup (%v)", p.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("PostgreSQL did not accept connections in time (last attempt: %v): %w", err, ctx.Err())
		case <-time.After(readyPollInterval):
		}
	}
}

// Stop asks the server for a fast shutdown (SIGINT: abort open transactions,
// checkpoint, exit) and waits until ctx's deadline, or 30 s if ctx has none,
// before killing it. Stopping a stopped server is a no-op; if the server had
// already died on its own, Stop reports that.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.proc
	if p == nil {
		return nil
	}
	s.proc = nil
	select {
	case <-p.exited:
		return fmt.Errorf("postgres had already exited (%v); last lines of %s:\n%s",
			p.waitErr, s.logPath, logTail(s.logPath, p.logFrom))
	default:
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultStopTimeout)
		defer cancel()
	}
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil && !errors.Is(err, os.ErrProcessDone) {
		s.proc = p
		return fmt.Errorf("ask postgres (PID %d) to shut down: %w", p.cmd.Process.Pid, err)
	}
	select {
	case <-p.exited:
		if p.waitErr != nil {
			return fmt.Errorf("postgres shut down with an error (%w); last lines of %s:\n%s",
				p.waitErr, s.logPath, logTail(s.logPath, p.logFrom))
		}
		s.log.Info("PostgreSQL stopped")
		return nil
	case <-ctx.Done():
	}
	s.log.Warn("PostgreSQL did not shut down in time; killing it", "pid", p.cmd.Process.Pid)
	stopErr := fmt.Errorf("postgres (PID %d) did not shut down in time and was killed: %w", p.cmd.Process.Pid, ctx.Err())
	if err := s.killAndWait(p); err != nil {
		return errors.Join(stopErr, err)
	}
	return stopErr
}

// Kill SIGKILLs the server and its backends without any shutdown, as a power
// failure or OOM kill would; meant for crash tests. Restart recovers.
func (s *Server) Kill() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.proc
	if p == nil {
		return fmt.Errorf("kill PostgreSQL for %s: not running", s.dataDir)
	}
	s.proc = nil
	return s.killAndWait(p)
}

// killAndWait kills the server's process tree and waits, up to killWait,
// until the postmaster is reaped and every child it had has exited, so the
// data directory can be started again at once.
func (s *Server) killAndWait(p *process) error {
	children, err := killTree(p.cmd.Process)
	deadline := time.Now().Add(killWait)
	select {
	case <-p.exited:
	case <-time.After(killWait):
		s.proc = p // still there; let a later Stop or Kill try again
		return errors.Join(err, fmt.Errorf("postgres (PID %d) survived SIGKILL for %v", p.cmd.Process.Pid, killWait))
	}
	if alive := waitChildrenGone(children, deadline); len(alive) > 0 {
		err = errors.Join(err, fmt.Errorf("postgres processes %v survived SIGKILL for %v", alive, killWait))
	}
	if err != nil {
		return fmt.Errorf("kill postgres: %w", err)
	}
	return nil
}

// Restart stops the server (see Stop) and starts it again on the same data
// directory and address, so URLs handed out earlier stay valid. If Stop
// reports an error, Restart returns it without starting; the server is
// stopped by then, so calling Restart again starts it.
func (s *Server) Restart(ctx context.Context) error {
	if err := s.Stop(ctx); err != nil {
		return fmt.Errorf("restart PostgreSQL: %w", err)
	}
	if err := s.launch(ctx); err != nil {
		return fmt.Errorf("restart PostgreSQL: %w", err)
	}
	s.log.Info("PostgreSQL restarted")
	return nil
}
