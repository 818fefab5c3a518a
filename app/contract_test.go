package app_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/testenv"
)

// recorded is one event as Cairn published it before the module kit
// (testdata/README.md).
type recorded struct {
	Subject string          `json:"subject"`
	Event   json.RawMessage `json:"event"`
}

func readRecorded(t *testing.T) []recorded {
	t.Helper()
	f, err := os.Open("testdata/events_0c7eea4.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []recorded
	for s := bufio.NewScanner(f); s.Scan(); {
		var r recorded
		if err := json.Unmarshal(s.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// Every event today's subscribers receive still means what it meant: its
// type is declared with the subject it was published on, the envelope and
// the data decode into the declared Go types, field for field (none
// unknown), and encode back to the very same bytes. Every event type the
// shipped modules declared then is among them.
func TestTodaysPayloadsDecodeAndEncodeTheSame(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range readRecorded(t) {
		var ce outbox.CloudEvent
		if err := json.Unmarshal(r.Event, &ce); err != nil {
			t.Fatal(err)
		}
		seen[ce.Type] = true
		d, ok := outbox.Lookup(ce.Type)
		if !ok {
			t.Errorf("%s is no longer declared", ce.Type)
			continue
		}
		if d.Subject() != r.Subject {
			t.Errorf("%s: declared subject %s, published on %s", ce.Type, d.Subject(), r.Subject)
		}
		if again, _ := json.Marshal(ce); !bytes.Equal(again, r.Event) {
			t.Errorf("%s: the envelope encodes differently:\n was %s\n now %s", ce.Type, r.Event, again)
		}
		data := reflect.New(d.Payload)
		dec := json.NewDecoder(bytes.NewReader(ce.Data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(data.Interface()); err != nil {
			t.Errorf("%s: data does not decode into %s: %v", ce.Type, d.Payload, err)
			continue
		}
		if again, _ := json.Marshal(data.Elem().Interface()); !bytes.Equal(again, ce.Data) {
			t.Errorf("%s: %s encodes differently:\n was %s\n now %s", ce.Type, d.Payload, ce.Data, again)
		}
	}
	for _, d := range outbox.Catalog() {
		if m := outbox.Module(d.Type); (m == "users" || m == "mail" || m == "ledger") && !seen[d.Type] {
			t.Errorf("%s is declared but was not recorded: a new type needs no compatibility, a renamed one breaks it", d.Type)
		}
	}
}

// The events the kit's modules publish now have today's shape: the same
// fields in the same order with the same JSON types, envelope and data, for
// every recorded type (driven through the same HTTP calls as the recording).
func TestNewEventsHaveTodaysShape(t *testing.T) {
	a := testenv.StartApp(t, testenv.AppOptions{})
	const trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	must := func(r testenv.Response, status int) testenv.Response {
		t.Helper()
		if r.Status != status {
			t.Fatalf("%d %s", r.Status, r.Raw)
		}
		return r
	}
	must(a.API("POST", "/users", map[string]string{"username": "Ada Lovelace", "email": "Ada@Example.com", "password": "correct horse battery"}, "traceparent", trace), 201)
	var token string
	for _, m := range a.Stream(outbox.InternalStream) {
		var d struct{ Token string }
		_ = json.Unmarshal(m.Data, &d)
		token = d.Token
	}
	must(a.API("POST", "/users/activate", map[string]string{"token": token}), 200)
	id := must(a.API("POST", "/accounts", map[string]string{"owner": "Ada", "currency": "EUR"}), 201).Body["id"].(string)
	must(a.API("POST", "/accounts/"+id+"/deposits", map[string]int{"amount": 12345}), 201)
	must(a.API("POST", "/accounts/"+id+"/withdrawals", map[string]int{"amount": 345}, "Idempotency-Key", "w-1"), 201)

	now := map[string]string{}
	for _, m := range append(a.Stream(outbox.PublicStream), a.Stream(outbox.InternalStream)...) {
		// New since the recording, optional, after datacontenttype: the
		// URL of the data's JSON Schema. Subscribers that do not know it
		// ignore it; old events without it still decode.
		got := shape(t, []byte(m.Raw))
		if !strings.Contains(got, ",datacontenttype:s,dataschema:s,data:") || !strings.HasSuffix(m.DataSchema, outbox.SchemaPath(m.Type)) {
			t.Errorf("%s lacks its dataschema: %s", m.Type, m.Raw)
		}
		now[m.Type] = m.NATSSubject + " " + strings.Replace(got, ",dataschema:s", "", 1)
	}
	for _, r := range readRecorded(t) {
		var ce outbox.CloudEvent
		_ = json.Unmarshal(r.Event, &ce)
		if was := r.Subject + " " + shape(t, r.Event); now[ce.Type] != was {
			t.Errorf("%s changed shape:\n was %s\n now %s", ce.Type, was, now[ce.Type])
		}
	}
}

// shape is a JSON document with every value replaced by its JSON type,
// keys kept in order: {"a":1,"b":["x"]} is {a:n,b:[s]}.
func shape(t *testing.T, doc []byte) string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var b strings.Builder
	inObject := []bool{false}
	expectKey := false
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return b.String()
		}
		if err != nil {
			t.Fatalf("shape of %s: %v", doc, err)
		}
		top := inObject[len(inObject)-1]
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{', '[':
				b.WriteString(string(v))
				inObject = append(inObject, v == '{')
				expectKey = v == '{'
				continue
			default:
				b.WriteString(string(v))
				inObject = inObject[:len(inObject)-1]
			}
		case string:
			if top && expectKey {
				fmt.Fprintf(&b, "%s:", v)
				expectKey = false
				continue
			}
			b.WriteString("s")
		case json.Number:
			b.WriteString("n")
		case bool:
			b.WriteString("b")
		case nil:
			b.WriteString("null")
		}
		expectKey = inObject[len(inObject)-1]
		if dec.More() {
			b.WriteString(",")
		}
	}
}
