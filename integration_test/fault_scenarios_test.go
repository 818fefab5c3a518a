package integration_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/testenv"
)

// The fault suite (issue 8). Each scenario runs two Cairn replicas on one
// PostgreSQL and the shared three-node NATS cluster under a steady load
// through both replicas, injects one fault, keeps the load going a while,
// and ends with finish: nothing wedged, and every invariant of the checker
// (fault_check_test.go) and of fencing (fault_verdict_test.go) holds.
// Takeover times are logged, not asserted, except where the issue makes a
// bound part of the requirement.

const (
	faultAfter   = 8 * time.Second  // load after the fault ends, before finish
	freezeFor    = 20 * time.Second // SIGSTOP and blackhole length
	replaceBound = 15 * time.Second // issue 8: a frozen leader is replaced within this
)

// Every NATS node in turn leaves in lame-duck mode and comes back, as in a
// rolling upgrade; stream leaders move each time.
func TestFaultNATSRollingRestart(t *testing.T) {
	e := startFaultEnv(t, "rolling")
	e.inject("restart each NATS node in turn (lame duck)", func() {
		for _, n := range e.cluster.Nodes {
			start := time.Now()
			if err := n.LameDuck(time.Minute); err != nil {
				t.Error(err)
			}
			down := time.Since(start)
			n.Start(t)
			if err := e.cluster.WaitHealthy(90 * time.Second); err != nil {
				t.Fatalf("after restarting %s: %v\n%s", n.Name, err, e.cluster.LogTail(20))
			}
			if err := e.cluster.WaitStreamsCurrent(e.js, 60*time.Second, outbox.PublicStream, outbox.InternalStream); err != nil {
				t.Fatalf("after restarting %s: %v", n.Name, err)
			}
			t.Logf("node %s: lame duck took %s, healthy and current again %s after it began", n.Name,
				down.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
		}
	})
	time.Sleep(faultAfter)
	e.finish()
}

// The relay leader, which also holds the mail consumer with an email in
// hand, dies at once and the standby takes over both. Then it comes back,
// the new leader dies with nothing in hand, and the first takes over
// again: a consumer's second takeover (issue 8, defect 1).
func TestFaultLeaderKill9(t *testing.T) {
	e := startFaultEnv(t, "kill9")
	victim := e.relayLeader()
	other := 1 - victim
	release := func() {}
	if e.consumerHolder() == victim {
		release = e.holdMail(victim)
	}
	e.inject(fmt.Sprintf("kill -9 replica %d, the relay leader", victim), func() { e.kill9(victim) })
	release()
	time.Sleep(faultAfter)
	t.Logf("takeover after kill -9: %s", e.measureTakeover(victim))

	e.restart(victim)
	e.waitState(victim, "standby", 30*time.Second)
	resume := e.quiesceMail()
	e.inject(fmt.Sprintf("kill -9 replica %d, the new relay leader, with no email in hand", other), func() { e.kill9(other) })
	resume()
	time.Sleep(faultAfter)
	t.Logf("takeover after the second kill -9: %s", e.measureTakeover(other))
	e.finish()
}

// The relay leader is frozen for 20 s with every socket open (a stalled VM,
// a long GC pause, SIGSTOP): it must be replaced within 15 s, and after
// SIGCONT it must publish and handle nothing until it has won leadership
// again (checkFencing). It is frozen with an email in hand, held at the
// SMTP server, whose session the server drops during the freeze: a
// holder that resumed where it stopped would send that email again.
func TestFaultLeaderSIGSTOP(t *testing.T) {
	e := startFaultEnv(t, "sigstop")
	victim := e.relayLeader()
	heldMail := e.consumerHolder() == victim
	release := func() {}
	if heldMail {
		release = e.holdMail(victim)
	}
	var cont func()
	e.inject(fmt.Sprintf("SIGSTOP replica %d, the relay leader, for %s", victim, freezeFor), func() { cont = e.freeze(victim) })
	time.Sleep(time.Second)
	release()
	time.Sleep(freezeFor - time.Second)
	cont()
	t.Logf("SIGCONT replica %d", victim)
	time.Sleep(faultAfter)
	tk := e.measureTakeover(victim)
	t.Logf("takeover after SIGSTOP: %s", tk)
	if tk.RelayLeader < 0 || tk.RelayLeader > replaceBound || tk.EventsFlow < 0 || tk.EventsFlow > replaceBound {
		t.Errorf("the frozen relay leader was not replaced within %s: %s", replaceBound, tk)
	}
	if heldMail && (tk.FirstMail < 0 || tk.FirstMail > replaceBound) {
		t.Errorf("the frozen replica's mail consumer was not replaced within %s: %s", replaceBound, tk)
	}
	e.finish()
}

// PostgreSQL restarts under both replicas: every session ends. (With no
// email in hand: see quiesceMail.)
func TestFaultPostgresRestart(t *testing.T) {
	e := startFaultEnv(t, "pgrestart")
	resume := e.quiesceMail()
	e.inject("restart PostgreSQL", func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := testenv.Server(t).Restart(ctx); err != nil {
			t.Fatalf("restart PostgreSQL: %v", err)
		}
	})
	e.db.Pool.Reset()
	resume()
	time.Sleep(faultAfter)
	e.finish()
}

// The relay leader's path to PostgreSQL goes silent for 20 s (no FIN, no
// RST), then heals. PostgreSQL keeps its session, so a leadership that
// lives in the session outlives the partition; issue 8 requires the leader
// to be replaced while the partition lasts, and fencing after it heals.
func TestFaultLeaderPostgresBlackhole(t *testing.T) {
	e := startFaultEnv(t, "pgblackhole")
	victim := e.relayLeader()
	heldMail := e.consumerHolder() == victim
	resume := e.quiesceMail()
	e.inject(fmt.Sprintf("blackhole replica %d's path to PostgreSQL for %s", victim, freezeFor), e.reps[victim].pgProxy.Blackhole)
	resume()
	time.Sleep(freezeFor)
	e.reps[victim].pgProxy.Heal()
	t.Logf("healed replica %d's path to PostgreSQL", victim)
	time.Sleep(faultAfter)
	tk := e.measureTakeover(victim)
	t.Logf("takeover after blackholing the leader's PostgreSQL: %s", tk)
	// The same bound as a frozen host: a cut-off leader is no better than
	// a frozen one to the others.
	if tk.RelayLeader < 0 || tk.RelayLeader > replaceBound || tk.EventsFlow < 0 || tk.EventsFlow > replaceBound {
		t.Errorf("the relay leader cut off from PostgreSQL was not replaced within %s: %s", replaceBound, tk)
	}
	if heldMail && (tk.FirstMail < 0 || tk.FirstMail > replaceBound) {
		t.Errorf("the cut-off replica's mail consumer was not replaced within %s: %s", replaceBound, tk)
	}
	e.finish()
}

// The relay leader's path to every NATS node goes silent for 20 s, then
// heals. Nothing it held back may reach NATS after another replica took
// over (checkFencing), and nothing may be lost.
func TestFaultLeaderNATSBlackhole(t *testing.T) {
	e := startFaultEnv(t, "natsblackhole")
	victim := e.relayLeader()
	e.inject(fmt.Sprintf("blackhole replica %d's path to NATS for %s", victim, freezeFor), e.reps[victim].blackholeNATS)
	time.Sleep(freezeFor)
	e.reps[victim].healNATS()
	t.Logf("healed replica %d's path to NATS", victim)
	time.Sleep(faultAfter)
	t.Logf("takeover after blackholing the leader's NATS: %s", e.measureTakeover(victim))
	e.finish()
}

// The NATS node leading the EVENTS stream dies at once (kill -9) under
// load and comes back on its store: publishes in flight to it fail or time
// out while later ones succeed on the new leader. Per-key order must
// survive that (issue 8, defect 6).
func TestFaultNATSStreamLeaderKill9(t *testing.T) {
	e := startFaultEnv(t, "natskill")
	node := e.streamLeader(outbox.PublicStream)
	e.inject(fmt.Sprintf("kill -9 NATS node %s, leader of %s", node.Name, outbox.PublicStream), node.Kill9)
	time.Sleep(3 * time.Second)
	node.Start(t)
	if err := e.cluster.WaitHealthy(90 * time.Second); err != nil {
		t.Fatalf("after restarting %s: %v\n%s", node.Name, err, e.cluster.LogTail(20))
	}
	if err := e.cluster.WaitStreamsCurrent(e.js, 60*time.Second, outbox.PublicStream, outbox.InternalStream); err != nil {
		t.Fatalf("after restarting %s: %v", node.Name, err)
	}
	t.Logf("node %s back and current %s after the kill", node.Name, time.Since(e.faultAt).Round(time.Millisecond))
	time.Sleep(faultAfter)
	e.finish()
}
