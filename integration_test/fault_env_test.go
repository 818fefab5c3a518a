package integration_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/testenv"
)

// The fault suite runs two Cairn replicas (the real binary) on one
// PostgreSQL and a three-node NATS cluster, each replica reaching both
// through TCP proxies of its own that a test can blackhole, under a steady
// load through both replicas' HTTP APIs. A scenario injects one fault,
// keeps the load going, and then finish checks every invariant.

// replica is one Cairn process and its paths to the outside.
type replica struct {
	idx         int
	proc        *cairnProc
	pgProxy     *testenv.Proxy
	natsProxies []*testenv.Proxy
	dead        bool // killed for good by the scenario
}

// faultEnv is one scenario's world.
type faultEnv struct {
	t        *testing.T
	mu       sync.Mutex     // guards reps[i] being replaced
	procs    [][]*cairnProc // every process each replica index ran, oldest first
	cluster  *testenv.NATSCluster
	nc       *nats.Conn
	js       jetstream.JetStream
	db       *testenv.DB
	sink     *mailSink
	pubs     *pubLog
	arrivals *arrivals
	reps     []*replica
	load     *load
	watch    *leaderWatch
	faultAt  time.Time
	fault    string
}

const (
	faultWarmup   = 3 * time.Second  // load before the fault
	faultSettle   = 60 * time.Second // bound for the final drain
	faultAccounts = 24
)

// startFaultEnv resets the shared cluster's streams, starts two replicas on
// a fresh database (replica 0 first, so it leads the relay and holds the
// mail consumer) and starts the load.
func startFaultEnv(t *testing.T, name string) *faultEnv {
	t.Helper()
	e := &faultEnv{t: t, cluster: testenv.SharedNATSCluster(t), pubs: &pubLog{}}
	if err := e.cluster.WaitHealthy(90 * time.Second); err != nil {
		t.Fatalf("NATS cluster: %v\n%s", err, e.cluster.LogTail(20))
	}
	e.nc, e.js = e.cluster.Connect(t)
	e.cluster.ResetStreams(t, e.js, 0) // the replicas declare them
	var err error
	if e.arrivals, err = watchArrivals(e.nc); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	e.db = testenv.MustDB(t)
	e.sink = mustMailSink(t, 2)
	e.procs = make([][]*cairnProc, 2)
	for i := range 2 {
		e.reps = append(e.reps, e.startReplica(i))
		e.procs[i] = append(e.procs[i], e.reps[i].proc)
		if i == 0 {
			e.waitState(0, "leader", 30*time.Second)
			e.reps[0].proc.WaitLog(`"msg":"`+logConsuming+`"`, 30*time.Second)
		}
	}
	e.waitState(1, "standby", 30*time.Second)
	if err := e.cluster.WaitStreamsCurrent(e.js, 60*time.Second, outbox.PublicStream, outbox.InternalStream); err != nil {
		t.Fatal(err)
	}
	e.load = newLoad(t, name, []string{e.reps[0].proc.HTTP, e.reps[1].proc.HTTP})
	e.load.openAccounts(faultAccounts)
	e.watch = watchLeaders(2, e.base)
	t.Cleanup(e.watch.Stop)
	e.load.start()
	t.Cleanup(e.load.Stop)
	time.Sleep(faultWarmup)
	return e
}

func (e *faultEnv) startReplica(i int) *replica {
	t := e.t
	r := &replica{idx: i}
	network, target := pgTarget(t, e.db.URL)
	r.pgProxy = testenv.MustProxy(t, network, target, nil)
	var natsURLs []string
	for _, n := range e.cluster.Nodes {
		p := testenv.MustProxy(t, "tcp", fmt.Sprintf("127.0.0.1:%d", n.Port), e.pubs.tap(i))
		r.natsProxies = append(r.natsProxies, p)
		natsURLs = append(natsURLs, fmt.Sprintf("nats://cairn:%s@%s", e.cluster.Password, p.Addr()))
	}
	r.proc = startCairn(t, map[string]string{
		"CAIRN_DATABASE_URL":       viaProxy(t, e.db.URL, r.pgProxy.Addr()),
		"CAIRN_NATS_URL":           strings.Join(natsURLs, ","),
		"CAIRN_NATS_REPLICAS":      "3",
		"CAIRN_NATS_SYNC_INTERVAL": testenv.SyncInterval.String(),
		"CAIRN_SMTP_URL":           e.sink.URL(i),
	})
	return r
}

// streamLeader is the cluster node that leads stream now.
func (e *faultEnv) streamLeader(stream string) *testenv.NATSNode {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := e.js.Stream(ctx, stream)
	if err != nil {
		e.t.Fatalf("stream %s: %v", stream, err)
	}
	info := s.CachedInfo()
	for _, n := range e.cluster.Nodes {
		if info.Cluster != nil && n.Name == info.Cluster.Leader {
			return n
		}
	}
	e.t.Fatalf("stream %s has no leader among the nodes: %+v", stream, info.Cluster)
	return nil
}

// base is replica i's HTTP base URL now.
func (e *faultEnv) base(i int) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.reps[i].proc.HTTP
}

// restart starts replica i again (after kill9) with new proxies and loads
// it again; its log history is kept for the fencing check.
func (e *faultEnv) restart(i int) {
	r := e.startReplica(i)
	e.mu.Lock()
	e.reps[i] = r
	e.procs[i] = append(e.procs[i], r.proc)
	e.mu.Unlock()
	e.load.resumeReplica(i, r.proc.HTTP)
}

// pgTarget is where the proxy dials the test database: the server's Unix
// socket, or its loopback port.
func pgTarget(t *testing.T, dbURL string) (network, target string) {
	cfg, err := pgconn.ParseConfig(dbURL)
	if err != nil {
		t.Fatalf("database URL: %v", err)
	}
	if strings.HasPrefix(cfg.Host, "/") {
		return "unix", fmt.Sprintf("%s/.s.PGSQL.%d", cfg.Host, cfg.Port)
	}
	return "tcp", fmt.Sprintf("%s:%d", cfg.Host, cfg.Port)
}

// viaProxy is dbURL pointed at the proxy's address.
func viaProxy(t *testing.T, dbURL, addr string) string {
	cfg, err := pgconn.ParseConfig(dbURL)
	if err != nil {
		t.Fatalf("database URL: %v", err)
	}
	u := url.URL{Scheme: "postgres", User: url.UserPassword(cfg.User, cfg.Password), Host: addr, Path: "/" + cfg.Database, RawQuery: "sslmode=disable"}
	return u.String()
}

// waitState waits until replica i's relay reports state.
func (e *faultEnv) waitState(i int, state string, timeout time.Duration) {
	e.t.Helper()
	client := &http.Client{Timeout: time.Second}
	waitUntil(e.t, timeout, fmt.Sprintf("replica %d's relay to report %s", i, state), func() bool {
		return relayState(client, e.reps[i].proc.HTTP) == state
	})
}

// relayLeader returns the replica whose relay reports leader now.
func (e *faultEnv) relayLeader() int {
	e.t.Helper()
	client := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		for i, r := range e.reps {
			if !r.dead && relayState(client, r.proc.HTTP) == "leader" {
				return i
			}
		}
	}
	e.t.Fatal("no replica reports its relay as leader")
	return -1
}

// consumerHolder is the replica that most recently logged that it consumes
// for the mail module, or -1.
func (e *faultEnv) consumerHolder() int {
	holder, at := -1, time.Time{}
	for i := range e.reps {
		ts := logTimes(e.procs[i], logConsuming, mailConsumer)
		if len(ts) > 0 && ts[len(ts)-1].After(at) {
			holder, at = i, ts[len(ts)-1]
		}
	}
	return holder
}

// quiesceMail pauses the sign-ups and waits until every user in the
// database has its email, so that no email is between the SMTP server's
// acceptance and its handler's commit. A fault there would hit the window
// the mail module documents (the email is sent again) instead of anything
// a lease can fix. It returns the function that resumes the sign-ups.
func (e *faultEnv) quiesceMail() func() {
	e.t.Helper()
	e.load.pauseSignups(true)
	waitUntil(e.t, 30*time.Second, "every activation email before the fault", func() bool {
		var users int
		err := e.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM users.accounts`).Scan(&users)
		return err == nil && e.sink.Count() >= users
	})
	time.Sleep(300 * time.Millisecond) // the last handlers commit
	return func() { e.load.pauseSignups(false) }
}

// holdMail makes replica i's next emails wait at the SMTP server, before
// any of the message is sent, until a session is waiting and every email
// sent before has been committed: replica i then has an event in hand
// (unacked) and none in the crash window. It returns Release.
func (e *faultEnv) holdMail(i int) func() {
	e.t.Helper()
	e.sink.Hold(i)
	waitUntil(e.t, 20*time.Second, fmt.Sprintf("an email of replica %d held at the SMTP server", i), func() bool { return e.sink.Held(i) > 0 })
	time.Sleep(300 * time.Millisecond)
	return func() { e.sink.Release(i) }
}

// inject records the moment of the fault and applies it.
func (e *faultEnv) inject(what string, apply func()) {
	e.t.Logf("fault: %s", what)
	e.fault, e.faultAt = what, time.Now()
	apply()
}

// freeze sends SIGSTOP (the process keeps every socket open) and returns
// the function that sends SIGCONT.
func (e *faultEnv) freeze(i int) func() {
	pid := e.reps[i].proc.Pid()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		e.t.Fatalf("SIGSTOP %d: %v", pid, err)
	}
	return func() {
		if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
			e.t.Errorf("SIGCONT %d: %v", pid, err)
		}
	}
}

// kill9 kills replica i for good and stops loading it.
func (e *faultEnv) kill9(i int) {
	e.load.stopReplica(i)
	e.reps[i].dead = true
	e.reps[i].proc.Kill9()
}

func (r *replica) blackholeNATS() {
	for _, p := range r.natsProxies {
		p.Blackhole()
	}
}

func (r *replica) healNATS() {
	for _, p := range r.natsProxies {
		p.Heal()
	}
}
