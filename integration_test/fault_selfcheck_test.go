package integration_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/outbox"
)

// The fault suite's own checks are tested on made-up evidence: each must
// report the fault it exists to find, and stay silent on a clean run.

func TestFaultCheckerFindsEachViolation(t *testing.T) {
	const acct, user = "acct-1", "user-1"
	tr := &truth{
		entries: map[string]entryRow{
			"o":  {Account: acct, Type: "opened", EventID: "o"},
			"d1": {Account: acct, Type: "deposited", EventID: "d1", Version: 1, Amount: 1},
			"d2": {Account: acct, Type: "deposited", EventID: "d2", Version: 2, Amount: 2},
			"d3": {Account: acct, Type: "deposited", EventID: "d3", Version: 3, Amount: 3},
		},
		users: map[string]string{user: "a@example.com"}, byEmail: map[string]string{"a@example.com": user},
		inbox: map[string]int{"r": 1}, mailRows: map[string]int{"r": 1},
	}
	tr.byAmount = map[string]entryRow{}
	for _, e := range tr.entries {
		if e.Type != "opened" {
			tr.byAmount[fmt.Sprintf("%s/%d", e.Type, e.Amount)] = e
		}
	}
	moves := []moveRec{
		{Kind: "deposited", Account: acct, Amount: 1, Outcome: committed, Version: 1, EventID: "d1"},
		{Kind: "deposited", Account: acct, Amount: 2, Outcome: committed, Version: 2, EventID: "d2"},
		{Kind: "deposited", Account: acct, Amount: 3, Outcome: committed, Version: 3, EventID: "d3"},
		{Kind: "withdrawn", Account: acct, Amount: impossible + 4, Outcome: refused},
	}
	signups := []signupRec{{Email: "a@example.com", Outcome: committed, UserID: user}}
	ledger := func(typ, id string, v, amount int64) streamMsg {
		return msg(typ, id, acct, fmt.Sprintf(`{"version":%d,"amount":%d}`, v, amount))
	}
	clean := []streamMsg{ledger(evOpened, "o", 0, 0), ledger(evDeposited, "d1", 1, 1), ledger(evDeposited, "d2", 2, 2),
		ledger(evDeposited, "d3", 3, 3), msg(evCreated, "c", user, `{}`), msg(evMailSent, "s", user, `{}`)}
	internal := []streamMsg{msg(evRequested, "r", user, `{}`)}
	oneMail := []sinkMail{{MessageID: "r" + messageIDHost, To: []string{"a@example.com"}}}

	f := &findings{}
	checkInvariants(f, moves, signups, tr, clean, internal, oneMail)
	if !f.empty() {
		t.Fatalf("a clean run has findings:\n%s", f)
	}

	broken := []streamMsg{ledger(evOpened, "o", 0, 0), ledger(evDeposited, "d2", 2, 2), ledger(evDeposited, "d1", 1, 1),
		ledger(evDeposited, "d2", 2, 2), ledger(evWithdrawn, "w", 4, impossible+4), msg(evCreated, "c", user, `{}`),
		msg(evMailSent, "s", user, `{}`)}
	f = &findings{}
	checkInvariants(f, moves, signups, tr, broken, internal, append(oneMail, oneMail[0]))
	for _, want := range []string{"out of commit order", "duplicated in a stream", "in a stream but never committed",
		"committed but not in its stream", "email sent more than once"} {
		if f.count[want] == 0 {
			t.Errorf("no %q finding in:\n%s", want, f)
		}
	}

	f = &findings{}
	tr.inbox = map[string]int{}
	tr.byAmount["withdrawn/"+fmt.Sprint(impossible+4)] = entryRow{Account: acct, Type: "withdrawn", EventID: "w", Version: 4, Amount: impossible + 4}
	checkInvariants(f, moves, signups, tr, clean, internal, nil)
	for _, want := range []string{"email missing", "inbox rows not exactly one", "rolled-back request committed"} {
		if f.count[want] == 0 {
			t.Errorf("no %q finding in:\n%s", want, f)
		}
	}
}

func msg(typ, id, key, data string) streamMsg {
	m := streamMsg{MsgID: id, Event: outbox.CloudEvent{ID: id, Type: typ, Subject: key, Data: json.RawMessage(data)}}
	_ = json.Unmarshal(m.Event.Data, &m.Data)
	return m
}

func TestFaultFencingCheckFindsStaleActs(t *testing.T) {
	t0 := time.Now()
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	consumingAt := [2][]time.Time{{at(0)}, {at(10)}}
	// Replica 0 consumes, replica 1 takes over at 10 s; replica 0 wakes at 20 s.
	mails := []sinkMail{{Via: 0, At: at(1)}, {Via: 1, At: at(11)}}
	f := &findings{}
	checkFencing(f, mails, consumingAt)
	if !f.empty() {
		t.Fatalf("a clean handover has findings:\n%s", f)
	}
	checkFencing(f, append(mails, sinkMail{Via: 0, At: at(20)}), consumingAt)
	if f.count["handled after losing the consumer"] != 1 {
		t.Fatalf("a stale email not found:\n%s", f)
	}
	// Taking the consumer back makes sending again legitimate.
	f = &findings{}
	consumingAt[0] = append(consumingAt[0], at(19))
	checkFencing(f, append(mails, sinkMail{Via: 0, At: at(20)}), consumingAt)
	if !f.empty() {
		t.Fatalf("sending after taking back has findings:\n%s", f)
	}

	// In a stream, terms only grow; an older term stored after a newer
	// one is a fencing failure, as is a message without a term.
	f = &findings{}
	checkTerms(f, []streamMsg{{Seq: 1, Term: 1}, {Seq: 2, Term: 1}, {Seq: 3, Term: 2}, {Seq: 4, Term: 4}})
	if !f.empty() {
		t.Fatalf("growing terms have findings:\n%s", f)
	}
	checkTerms(f, []streamMsg{{Seq: 1, Term: 1}, {Seq: 2, Term: 2}, {Seq: 3, Term: 1, MsgID: "stale"}, {Seq: 4}})
	if f.count["stored from an older relay term"] != 1 || f.count["stored without a relay term"] != 1 {
		t.Fatalf("a stale publish not found:\n%s", f)
	}

	// Publishes of an old term that reach the server late are counted.
	leaderAt := [2][]time.Time{{at(0)}, {at(10)}}
	pubs := []natsPub{{Via: 0, At: at(1)}, {Via: 1, At: at(11)}, {Via: 0, At: at(20)}, {Via: 1, At: at(21)}}
	if n := staleWrites(pubs, leaderAt); n != 1 {
		t.Fatalf("%d stale writes counted, want 1", n)
	}
}

func TestFaultPublishTapReadsTheProtocol(t *testing.T) {
	l := &pubLog{}
	feed := l.tap(1)()
	stream := "CONNECT {\"verbose\":false}\r\nPING\r\nSUB _INBOX.x 1\r\n" +
		"HPUB events.ledger.deposited.v1 _INBOX.a 31 36\r\nNATS/1.0\r\nNats-Msg-Id: ev-1\r\n\r\nhello\r\n" +
		"PUB $JS.ACK.x 2\r\n+A\r\n" +
		"HPUB internal.users.activation_requested.v1 _INBOX.b 31 38\r\nNATS/1.0\r\nNats-Msg-Id: ev-2\r\n\r\nPUB x\r\n\r\n"
	// Byte by byte: the parser must not depend on how TCP cuts the stream.
	for i := range len(stream) {
		feed([]byte{stream[i]}, time.Now())
	}
	var got []string
	for _, p := range l.Pubs() {
		if p.Via != 1 {
			t.Errorf("publish attributed to replica %d", p.Via)
		}
		got = append(got, p.Subject+" "+p.MsgID)
	}
	want := []string{"events.ledger.deposited.v1 ev-1", "internal.users.activation_requested.v1 ev-2"}
	if !slices.Equal(got, want) {
		t.Fatalf("tap read %q, want %q", got, want)
	}
}
