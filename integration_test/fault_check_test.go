package integration_test

import (
	"strconv"

	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-dev/cairn/modules/mail"
	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/relay"
)

// The event types the load causes.
const (
	evOpened      = "ledger.account_opened.v1"
	evDeposited   = "ledger.deposited.v1"
	evWithdrawn   = "ledger.withdrawn.v1"
	evCreated     = "users.account_created.v1"
	evRequested   = "users.activation_requested.v1"
	evMailSent    = "mail.activation_email_sent.v1"
	mailConsumer  = mail.Consumer
	maxExamples   = 8
	messageIDHost = "@localhost" // CAIRN_PUBLIC_URL's host, in every Message-ID
)

// streamMsg is one message of a stream, in stream order.
type streamMsg struct {
	Seq   uint64
	MsgID string
	Term  int64 // the relay's lease token when it published the message (relay.TermHeader)
	Event outbox.CloudEvent
	Data  struct {
		Version int64 `json:"version"`
		Amount  int64 `json:"amount"`
	}
}

// readStream reads a whole stream in sequence order, one message at a
// time (a few thousand round trips on loopback: simple and exact, and a
// transient error is retried).
func readStream(ctx context.Context, js jetstream.JetStream, name string) ([]streamMsg, error) {
	s, err := js.Stream(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("stream %s info: %w", name, err)
	}
	var out []streamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		var m *jetstream.RawStreamMsg
		for attempt := 0; ; attempt++ {
			m, err = s.GetMsg(ctx, seq)
			if err == nil || errors.Is(err, jetstream.ErrMsgNotFound) || attempt == 20 {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // deleted: nothing in these tests deletes, but it is not ours to judge here
		}
		if err != nil {
			return nil, fmt.Errorf("stream %s message %d: %w", name, seq, err)
		}
		sm := streamMsg{Seq: seq, MsgID: m.Header.Get(jetstream.MsgIDHeader)}
		sm.Term, _ = strconv.ParseInt(m.Header.Get(relay.TermHeader), 10, 64)
		if err := json.Unmarshal(m.Data, &sm.Event); err != nil {
			return nil, fmt.Errorf("stream %s seq %d: not a CloudEvent: %w", name, seq, err)
		}
		_ = json.Unmarshal(sm.Event.Data, &sm.Data)
		out = append(out, sm)
	}
	return out, nil
}

// findings collects what the checker found, by kind, with a few examples
// of each.
type findings struct {
	kinds []string
	count map[string]int
	ex    map[string][]string
}

func (f *findings) add(kind, format string, args ...any) {
	if f.count == nil {
		f.count, f.ex = map[string]int{}, map[string][]string{}
	}
	if f.count[kind] == 0 {
		f.kinds = append(f.kinds, kind)
	}
	f.count[kind]++
	if len(f.ex[kind]) < maxExamples {
		f.ex[kind] = append(f.ex[kind], fmt.Sprintf(format, args...))
	}
}

func (f *findings) empty() bool { return len(f.kinds) == 0 }

func (f *findings) String() string {
	var b strings.Builder
	for _, k := range f.kinds {
		fmt.Fprintf(&b, "  %s: %d\n", k, f.count[k])
		for _, e := range f.ex[k] {
			fmt.Fprintf(&b, "      %s\n", e)
		}
	}
	return b.String()
}

// truth is what the database says committed, and the effects it recorded.
type truth struct {
	entries   map[string]entryRow // by event id
	byAmount  map[string]entryRow // by type + amount
	users     map[string]string   // id -> email
	byEmail   map[string]string   // email -> id
	inbox     map[string]int      // event id -> rows, for the mail consumer
	mailRows  map[string]int      // event id -> mail.messages rows
	deadLetts []string
}

type entryRow struct {
	Account, Type, EventID string
	Version, Amount        int64
}

func readTruth(ctx context.Context, pool *pgxpool.Pool) (*truth, error) {
	tr := &truth{entries: map[string]entryRow{}, byAmount: map[string]entryRow{}, users: map[string]string{},
		byEmail: map[string]string{}, inbox: map[string]int{}, mailRows: map[string]int{}}
	rows, err := pool.Query(ctx, `SELECT account_id::text, version, type, amount, event_id::text FROM ledger.entries`)
	if err != nil {
		return nil, fmt.Errorf("read ledger.entries: %w", err)
	}
	for rows.Next() {
		var e entryRow
		if err := rows.Scan(&e.Account, &e.Version, &e.Type, &e.Amount, &e.EventID); err != nil {
			return nil, err
		}
		tr.entries[e.EventID] = e
		if e.Type != "opened" {
			tr.byAmount[fmt.Sprintf("%s/%d", e.Type, e.Amount)] = e
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = pool.Query(ctx, `SELECT id::text, lower(email) FROM users.accounts`)
	if err != nil {
		return nil, fmt.Errorf("read users.accounts: %w", err)
	}
	for rows.Next() {
		var id, email string
		if err := rows.Scan(&id, &email); err != nil {
			return nil, err
		}
		tr.users[id], tr.byEmail[email] = email, id
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if err := countBy(ctx, pool, tr.inbox, `SELECT event_id::text, count(*) FROM inbox.processed WHERE consumer = $1 GROUP BY 1`, mailConsumer); err != nil {
		return nil, fmt.Errorf("read inbox.processed: %w", err)
	}
	if err := countBy(ctx, pool, tr.mailRows, `SELECT event_id::text, count(*) FROM mail.messages GROUP BY 1`); err != nil {
		return nil, fmt.Errorf("read mail.messages: %w", err)
	}
	rows, err = pool.Query(ctx, `SELECT event_id::text || ' ' || event_type || ': ' || left(last_error, 200) FROM inbox.dead_letters`)
	if err != nil {
		// The table's columns are the consumer runtime's business; fall
		// back to counting if they change.
		var n int
		if err2 := pool.QueryRow(ctx, `SELECT count(*) FROM inbox.dead_letters`).Scan(&n); err2 != nil {
			return nil, fmt.Errorf("read inbox.dead_letters: %w", errors.Join(err, err2))
		}
		for range n {
			tr.deadLetts = append(tr.deadLetts, "(a dead letter)")
		}
		return tr, nil
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		tr.deadLetts = append(tr.deadLetts, s)
	}
	return tr, rows.Err()
}

// checkInvariants compares what the load was told, what the database
// holds, what the two streams hold and what the consumer did, and reports
// every loss, duplicate, reordering or leak it finds.
func checkInvariants(f *findings, moves []moveRec, signups []signupRec, tr *truth, events, internal []streamMsg, mails []sinkMail) string {

	// 1. The load's answers against the database.
	reqByAmount := map[string]moveRec{}
	var nCommitted, nRefused, nUnknown, nNotSent int
	for _, m := range moves {
		reqByAmount[fmt.Sprintf("%s/%d", m.Kind, m.Amount)] = m
		switch m.Outcome {
		case committed:
			nCommitted++
			e, ok := tr.entries[m.EventID]
			switch {
			case !ok:
				f.add("answered 201 but not in the database", "%s %d on %s (v%d, event %s) via replica %d", m.Kind, m.Amount, m.Account, m.Version, m.EventID, m.Via)
			case e.Amount != m.Amount || e.Version != m.Version || e.Account != m.Account:
				f.add("answered 201 but the database differs", "request %s %d v%d on %s; entry %+v", m.Kind, m.Amount, m.Version, m.Account, e)
			}
		case refused:
			nRefused++
		case unknown:
			nUnknown++
		case notSent:
			nNotSent++
		case unexpected:
			f.add("unexpected HTTP answer", "%s %d via replica %d: %d %s", m.Kind, m.Amount, m.Via, m.Status, m.Err)
		}
	}
	for key, e := range tr.byAmount {
		m, ok := reqByAmount[key]
		switch {
		case !ok:
			f.add("ledger entry no request made", "%+v", e)
		case m.Outcome == refused || m.Outcome == notSent:
			f.add("rolled-back request committed", "%s %d on %s: answer %s (%d) but entry v%d event %s", m.Kind, m.Amount, m.Account, m.Outcome, m.Status, e.Version, e.EventID)
		}
	}
	sigByEmail := map[string]signupRec{}
	for _, s := range signups {
		sigByEmail[strings.ToLower(s.Email)] = s
		switch s.Outcome {
		case committed:
			if id, ok := tr.byEmail[strings.ToLower(s.Email)]; !ok || id != s.UserID {
				f.add("sign-up answered 201 but not in the database", "%s (id %s) via replica %d", s.Email, s.UserID, s.Via)
			}
		case unexpected:
			f.add("unexpected HTTP answer", "sign-up %s via replica %d: %d %s", s.Email, s.Via, s.Status, s.Err)
		}
	}
	for email, id := range tr.byEmail {
		if s, ok := sigByEmail[email]; !ok || s.Outcome == notSent || s.Outcome == refused {
			f.add("user in the database no sign-up committed", "%s %s", id, email)
		}
	}

	// 2. The streams against the database: every committed event exactly
	// once, nothing else, and per key in commit order.
	seen := map[string]int{}
	lastVersion := map[string]int64{}
	created := map[string]int{}
	mailSent := map[string]int{}
	for _, m := range events {
		if m.MsgID != m.Event.ID {
			f.add("Nats-Msg-Id differs from the event id", "EVENTS seq %d: %s vs %s", m.Seq, m.MsgID, m.Event.ID)
		}
		seen[m.Event.ID]++
		if seen[m.Event.ID] > 1 {
			f.add("duplicated in a stream", "EVENTS seq %d: %s %s key %s", m.Seq, m.Event.Type, m.Event.ID, m.Event.Subject)
			continue
		}
		switch m.Event.Type {
		case evOpened, evDeposited, evWithdrawn:
			e, ok := tr.entries[m.Event.ID]
			if !ok {
				f.add("in a stream but never committed", "EVENTS seq %d: %s %s key %s amount %d", m.Seq, m.Event.Type, m.Event.ID, m.Event.Subject, m.Data.Amount)
				continue
			}
			if last, ok := lastVersion[e.Account]; ok && e.Version <= last {
				f.add("out of commit order", "account %s: v%d (seq %d) after v%d", e.Account, e.Version, m.Seq, last)
			}
			lastVersion[e.Account] = max(lastVersion[e.Account], e.Version)
		case evCreated:
			if _, ok := tr.users[m.Event.Subject]; !ok {
				f.add("in a stream but never committed", "EVENTS seq %d: %s for unknown user %s", m.Seq, m.Event.Type, m.Event.Subject)
			}
			created[m.Event.Subject]++
		case evMailSent:
			if created[m.Event.Subject] == 0 {
				f.add("out of commit order", "user %s: %s (seq %d) before %s", m.Event.Subject, evMailSent, m.Seq, evCreated)
			}
			mailSent[m.Event.Subject]++
		default:
			f.add("unexpected event type", "EVENTS seq %d: %s", m.Seq, m.Event.Type)
		}
	}
	for id, e := range tr.entries {
		if seen[id] == 0 {
			f.add("committed but not in its stream", "%s v%d of %s (amount %d, event %s)", e.Type, e.Version, e.Account, e.Amount, id)
		}
	}
	requested := map[string]string{} // user id -> activation_requested event id
	for _, m := range internal {
		if m.MsgID != m.Event.ID {
			f.add("Nats-Msg-Id differs from the event id", "INTERNAL seq %d: %s vs %s", m.Seq, m.MsgID, m.Event.ID)
		}
		seen[m.Event.ID]++
		if seen[m.Event.ID] > 1 {
			f.add("duplicated in a stream", "INTERNAL seq %d: %s %s key %s", m.Seq, m.Event.Type, m.Event.ID, m.Event.Subject)
			continue
		}
		if m.Event.Type != evRequested {
			f.add("unexpected event type", "INTERNAL seq %d: %s", m.Seq, m.Event.Type)
			continue
		}
		if _, ok := tr.users[m.Event.Subject]; !ok {
			f.add("in a stream but never committed", "INTERNAL seq %d: %s for unknown user %s", m.Seq, m.Event.Type, m.Event.Subject)
			continue
		}
		if prev, ok := requested[m.Event.Subject]; ok {
			f.add("two activation requests for one user", "user %s: %s and %s", m.Event.Subject, prev, m.Event.ID)
		}
		requested[m.Event.Subject] = m.Event.ID
	}
	for id, email := range tr.users {
		if created[id] == 0 {
			f.add("committed but not in its stream", "%s of user %s (%s)", evCreated, id, email)
		}
		if _, ok := requested[id]; !ok {
			f.add("committed but not in its stream", "%s of user %s (%s)", evRequested, id, email)
		}
	}

	// 3. The consumer's effects: one email, inbox row, mailbox row and
	// activation_email_sent event per activation request; nothing parked.
	byMsgID := map[string][]sinkMail{}
	for _, m := range mails {
		byMsgID[strings.TrimSuffix(m.MessageID, messageIDHost)] = append(byMsgID[strings.TrimSuffix(m.MessageID, messageIDHost)], m)
	}
	wanted := map[string]bool{}
	for user, ev := range requested {
		wanted[ev] = true
		got := byMsgID[ev]
		switch {
		case len(got) == 0:
			f.add("email missing", "user %s (%s), event %s", user, tr.users[user], ev)
		case len(got) > 1:
			var via []string
			for _, m := range got {
				via = append(via, fmt.Sprintf("replica %d at %s", m.Via, m.At.Format("15:04:05.000")))
			}
			f.add("email sent more than once", "user %s (%s), event %s: %d copies (%s)", user, tr.users[user], ev, len(got), strings.Join(via, ", "))
		case len(got[0].To) != 1 || !strings.EqualFold(got[0].To[0], tr.users[user]):
			f.add("email to the wrong address", "user %s: want %s, got %v", user, tr.users[user], got[0].To)
		}
		if tr.inbox[ev] != 1 {
			f.add("inbox rows not exactly one", "event %s (user %s): %d rows", ev, user, tr.inbox[ev])
		}
		if tr.mailRows[ev] != 1 {
			f.add("mail.messages rows not exactly one", "event %s (user %s): %d rows", ev, user, tr.mailRows[ev])
		}
		if mailSent[user] != 1 {
			f.add("activation_email_sent events not exactly one", "user %s: %d", user, mailSent[user])
		}
	}
	for id, ms := range byMsgID {
		if !wanted[id] {
			f.add("email for no activation request", "Message-ID %s (%d copies) to %v", id, len(ms), ms[0].To)
		}
	}
	for id := range tr.inbox {
		if !wanted[id] {
			f.add("inbox row for no activation request", "event %s", id)
		}
	}
	for _, d := range tr.deadLetts {
		f.add("dead letter", "%s", d)
	}

	summary := fmt.Sprintf("moves: %d committed, %d refused, %d unknown, %d not sent; ledger entries %d; sign-ups %d, users %d; "+
		"EVENTS %d messages, INTERNAL %d; emails %d",
		nCommitted, nRefused, nUnknown, nNotSent, len(tr.entries), len(signups), len(tr.users), len(events), len(internal), len(mails))
	return summary
}

// countBy fills into with the (key, count) rows of q.
func countBy(ctx context.Context, pool *pgxpool.Pool, into map[string]int, q string, args ...any) error {
	rows, err := pool.Query(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			return err
		}
		into[k] = n
	}
	return rows.Err()
}
