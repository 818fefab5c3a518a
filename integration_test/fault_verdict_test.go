package integration_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/cairn-dev/cairn/outbox"
)

// takeover is how long after the fault the other replica took over; a
// negative duration means it never did.
type takeover struct {
	RelayLeader time.Duration // its status reported the relay as leader
	FirstPub    time.Duration // it published its first event
	EventsFlow  time.Duration // an event committed after the fault reached NATS
	Consuming   time.Duration // it logged that it consumes for the mail module
	FirstMail   time.Duration // it sent its first email
}

func (tk takeover) String() string {
	return fmt.Sprintf("relay leader %s, first publish %s, post-fault event arrives %s; mail consumer taken %s, first email %s",
		never(tk.RelayLeader), never(tk.FirstPub), never(tk.EventsFlow), never(tk.Consuming), never(tk.FirstMail))
}

func never(d time.Duration) string {
	if d < 0 {
		return "never"
	}
	return d.Round(10 * time.Millisecond).String()
}

func since(t, from time.Time) time.Duration {
	if t.IsZero() {
		return -1
	}
	return t.Sub(from)
}

// measureTakeover measures how the replica other than victim took over
// after the fault.
func (e *faultEnv) measureTakeover(victim int) takeover {
	other := 1 - victim
	var tk takeover
	tk.RelayLeader = since(e.watch.firstState(other, "leader", e.faultAt), e.faultAt)
	var firstPub time.Time
	for _, p := range e.pubs.Pubs() {
		if p.Via == other && p.At.After(e.faultAt) && (firstPub.IsZero() || p.At.Before(firstPub)) {
			firstPub = p.At
		}
	}
	tk.FirstPub = since(firstPub, e.faultAt)
	moves, _ := e.load.Records()
	var flow time.Time
	for _, m := range moves {
		if m.Outcome != committed || !m.Start.After(e.faultAt) {
			continue
		}
		if at := e.arrivals.At(m.EventID); !at.IsZero() && (flow.IsZero() || at.Before(flow)) {
			flow = at
		}
	}
	tk.EventsFlow = since(flow, e.faultAt)
	tk.Consuming = since(firstAfter(logTimes(e.procs[other], logConsuming, mailConsumer), e.faultAt), e.faultAt)
	var firstMail time.Time
	for _, m := range e.sink.Mails() {
		if m.Via == other && m.At.After(e.faultAt) && (firstMail.IsZero() || m.At.Before(firstMail)) {
			firstMail = m.At
		}
	}
	tk.FirstMail = since(firstMail, e.faultAt)
	return tk
}

// checkFencing finds a relay term that published after a later one, and a
// replica that sent an email after the other one had taken the mail
// consumer over without taking it back first.
//
// For events the proof is in the streams: every message carries the lease
// token of the relay term that published it, and in stream order the token
// never decreases (checkTerms). Bytes of an old term can still reach the
// NATS server after a takeover (a frozen process's write buffer flushed on
// SIGCONT, a healed path delivering what TCP held); the expected-sequence
// fence makes the server refuse them, so they are counted and logged, not
// judged. Emails have no such fence at the SMTP server: one sent by a
// replica after the other took the consumer is a finding.
func (e *faultEnv) checkFencing(f *findings, streams ...[]streamMsg) {
	var leaderAt, consumingAt [2][]time.Time
	for i := range 2 {
		leaderAt[i] = logTimes(e.procs[i], logRelayLeader, "")
		consumingAt[i] = logTimes(e.procs[i], logConsuming, mailConsumer)
	}
	for _, s := range streams {
		checkTerms(f, s)
	}
	checkFencing(f, e.sink.Mails(), consumingAt)
	if n := staleWrites(e.pubs.Pubs(), leaderAt); n > 0 {
		e.t.Logf("%d publishes of an old relay term reached the NATS server after a takeover (the fence refuses them; the streams are judged by checkTerms)", n)
	}
}

// checkTerms finds, in one stream read in sequence order, a message
// published by an older relay term than a message before it, or one
// without a term.
func checkTerms(f *findings, msgs []streamMsg) {
	var last streamMsg
	for _, m := range msgs {
		switch {
		case m.Term <= 0:
			f.add("stored without a relay term", "seq %d, event %s", m.Seq, m.MsgID)
		case m.Term < last.Term:
			f.add("stored from an older relay term", "seq %d (event %s) from term %d after seq %d (event %s) from term %d",
				m.Seq, m.MsgID, m.Term, last.Seq, last.MsgID, last.Term)
		}
		if m.Term > last.Term {
			last = m
		}
	}
}

// checkFencing finds emails sent by a replica after the other one had sent
// one, with no take-over of the mail consumer of its own in between.
func checkFencing(f *findings, mails []sinkMail, consumingAt [2][]time.Time) {
	sort.SliceStable(mails, func(i, j int) bool { return mails[i].At.Before(mails[j].At) })
	var lastBy [2]time.Time
	for _, m := range mails {
		other := lastBy[1-m.Via]
		if !other.IsZero() && latestBefore(consumingAt[m.Via], m.At).Before(other) {
			f.add("handled after losing the consumer", "replica %d sent %s at %s, after replica %d sent one at %s; it last took the consumer at %s",
				m.Via, m.MessageID, clock(m.At), 1-m.Via, clock(other), clock(latestBefore(consumingAt[m.Via], m.At)))
		}
		lastBy[m.Via] = m.At
	}
}

// staleWrites counts publishes that reached the NATS server from a replica
// after the other one had published, with no "relay is leader" of its own
// in between.
func staleWrites(pubs []natsPub, leaderAt [2][]time.Time) int {
	sort.SliceStable(pubs, func(i, j int) bool { return pubs[i].At.Before(pubs[j].At) })
	var lastBy [2]time.Time
	n := 0
	for _, p := range pubs {
		other := lastBy[1-p.Via]
		if !other.IsZero() && latestBefore(leaderAt[p.Via], p.At).Before(other) {
			n++
			continue
		}
		lastBy[p.Via] = p.At
	}
	return n
}

// latestBefore is the last time in ts before t, or the zero time.
func latestBefore(ts []time.Time, t time.Time) time.Time {
	var out time.Time
	for _, x := range ts {
		if x.Before(t) {
			out = x
		}
	}
	return out
}

func clock(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Format("15:04:05.000")
}

// finish stops the load, checks that nothing is wedged (a final deposit and
// sign-up through each live replica arrive), waits for the drain, and runs
// the invariant checker; every finding fails the test.
func (e *faultEnv) finish() {
	t := e.t
	t.Helper()
	e.load.Stop()
	f := &findings{}
	deadline := time.Now().Add(faultSettle)
	for i, r := range e.reps {
		if r.dead {
			continue
		}
		mv, su := e.load.probe(i)
		if mv.Outcome != committed || su.Outcome != committed {
			f.add("wedged: final request failed", "replica %d: deposit %s %d %s; sign-up %s %d %s", i, mv.Outcome, mv.Status, mv.Err, su.Outcome, su.Status, su.Err)
			continue
		}
		for time.Now().Before(deadline) && e.arrivals.At(mv.EventID).IsZero() {
			time.Sleep(50 * time.Millisecond)
		}
		if e.arrivals.At(mv.EventID).IsZero() {
			f.add("wedged: final deposit never published", "via replica %d, event %s, within %s", i, mv.EventID, faultSettle)
		}
		for time.Now().Before(deadline) && !e.mailedTo(su.Email) {
			time.Sleep(50 * time.Millisecond)
		}
		if !e.mailedTo(su.Email) {
			f.add("wedged: final sign-up got no email", "via replica %d, %s, within %s", i, su.Email, faultSettle)
		}
	}
	e.waitDrained(deadline)
	time.Sleep(time.Second) // a late duplicate would land now
	e.watch.Stop()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tr, err := readTruth(ctx, e.db.Pool)
	if err != nil {
		t.Fatal(err)
	}
	events, err := readStream(ctx, e.js, outbox.PublicStream)
	if err != nil {
		t.Fatal(err)
	}
	internal, err := readStream(ctx, e.js, outbox.InternalStream)
	if err != nil {
		t.Fatal(err)
	}
	moves, signups := e.load.Records()
	summary := checkInvariants(f, moves, signups, tr, events, internal, e.sink.Mails())
	// The lake: every event of both streams moved in exactly once.
	if left, err := waitLakeMoved(ctx, e.db.Pool, faultSettle); err != nil || left > 0 {
		f.add("lake: published rows never moved", "%d rows left in the outbox (%v)", left, err)
	} else if err := checkLake(ctx, e.db.Pool, f, map[string][]streamMsg{outbox.PublicStream: events, outbox.InternalStream: internal}); err != nil {
		t.Fatal(err)
	}
	e.checkFencing(f, events, internal)
	t.Logf("after %q: %s", e.fault, summary)
	if n := e.watch.overlaps(e.faultAt); n > 0 {
		t.Logf("both replicas' status reported the relay as leader at once %d times", n)
	}
	if !f.empty() {
		t.Errorf("invariants broken after %q:\n%s", e.fault, f)
	}
	e.keepLogs()
}

// keepLogs writes every replica's log and the NATS nodes' logs to the
// directory CAIRN_FAULT_LOGS names, if set, for a look after the run.
func (e *faultEnv) keepLogs() {
	dir := os.Getenv("CAIRN_FAULT_LOGS")
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		e.t.Logf("CAIRN_FAULT_LOGS: %v", err)
		return
	}
	for i, procs := range e.procs {
		for n, p := range procs {
			name := filepath.Join(dir, fmt.Sprintf("%s-replica%d-%d.log", e.t.Name(), i, n))
			if err := os.WriteFile(name, []byte(p.logs.String()), 0o644); err != nil {
				e.t.Logf("CAIRN_FAULT_LOGS: %v", err)
			}
		}
	}
	_ = os.WriteFile(filepath.Join(dir, e.t.Name()+"-nats.log"), []byte(e.cluster.LogTail(400)), 0o644)
	e.t.Logf("logs kept in %s", dir)
}

func (e *faultEnv) mailedTo(email string) bool {
	for _, m := range e.sink.Mails() {
		for _, to := range m.To {
			if strings.EqualFold(to, email) {
				return true
			}
		}
	}
	return false
}

// waitDrained waits until the streams hold as many events as the database
// says committed, and the SMTP server as many emails as there are users.
func (e *faultEnv) waitDrained(deadline time.Time) {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	for ctx.Err() == nil {
		tr, err := readTruth(ctx, e.db.Pool)
		if err == nil &&
			streamCount(ctx, e, outbox.PublicStream) >= uint64(len(tr.entries)+2*len(tr.users)) &&
			streamCount(ctx, e, outbox.InternalStream) >= uint64(len(tr.users)) &&
			e.sink.Count() >= len(tr.users) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	e.t.Logf("the drain did not complete within %s; checking what arrived", faultSettle)
}

func streamCount(ctx context.Context, e *faultEnv, name string) uint64 {
	s, err := e.js.Stream(ctx, name)
	if err != nil {
		return 0
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0
	}
	return info.State.Msgs
}
