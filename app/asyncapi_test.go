package app_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/cairn-dev/cairn/config"
	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/testenv"
)

const contractToken = "contract-test-token"

func startContractApp(t *testing.T) *testenv.App {
	t.Helper()
	return testenv.StartApp(t, testenv.AppOptions{Config: func(c *config.Config) {
		c.AdminToken = contractToken
		c.PublicURL = "https://cairn.example.com"
	}})
}

// /asyncapi.json is a valid AsyncAPI 3.0 document (against the official
// schema) with exactly the public event types of the catalog, each on its
// subject; the internal ones are in /asyncapi-internal.json, for the admin
// only, and so are their data schemas.
func TestAsyncAPIDocumentIsValid(t *testing.T) {
	a := startContractApp(t)
	meta := mustMetaSchema(t, "asyncapi-3.0.0.schema.json")
	admin := []string{"Authorization", "Bearer " + contractToken}
	for _, c := range []struct {
		path string
		v    outbox.Visibility
	}{{"/asyncapi.json", outbox.Public}, {"/asyncapi-internal.json", outbox.Internal}} {
		var header []string
		if c.v == outbox.Internal {
			if r := testenv.Do(t, "GET", a.URL+c.path, nil); r.Status != 401 {
				t.Fatalf("%s without the admin token: %d", c.path, r.Status)
			}
			header = admin
		}
		r := testenv.Do(t, "GET", a.URL+c.path, nil, header...)
		if r.Status != 200 {
			t.Fatalf("%s: %d %s", c.path, r.Status, r.Raw)
		}
		if err := meta.Validate(mustJSON(t, []byte(r.Raw))); err != nil {
			t.Fatalf("%s is not a valid AsyncAPI 3.0 document: %v", c.path, err)
		}
		var doc struct {
			Channels map[string]struct {
				Address string `json:"address"`
			} `json:"channels"`
		}
		if err := json.Unmarshal([]byte(r.Raw), &doc); err != nil {
			t.Fatal(err)
		}
		want := 0
		for _, d := range outbox.Catalog() {
			if d.Visibility != c.v {
				if _, ok := doc.Channels[d.Type]; ok {
					t.Errorf("%s lists %s, which is %s", c.path, d.Type, d.Visibility)
				}
				continue
			}
			want++
			if got := doc.Channels[d.Type].Address; got != d.Subject() {
				t.Errorf("%s: %s on %q, want %q", c.path, d.Type, got, d.Subject())
			}
		}
		if want == 0 || len(doc.Channels) != want {
			t.Errorf("%s has %d channels, want %d", c.path, len(doc.Channels), want)
		}
	}
	for _, d := range outbox.Catalog() {
		path := a.URL + outbox.SchemaPath(d.Type)
		r := testenv.Do(t, "GET", path, nil)
		switch {
		case d.Visibility == outbox.Public && r.Status != 200, d.Visibility == outbox.Internal && r.Status != 401:
			t.Errorf("GET %s (%s) without a token: %d", outbox.SchemaPath(d.Type), d.Visibility, r.Status)
		}
		if r := testenv.Do(t, "GET", path, nil, admin...); r.Status != 200 || !strings.Contains(r.Raw, `"$id":"https://cairn.example.com`+outbox.SchemaPath(d.Type)+`"`) {
			t.Errorf("GET %s: %d %s", outbox.SchemaPath(d.Type), r.Status, r.Raw)
		}
	}
	if r := testenv.Do(t, "GET", a.URL+"/schemas/events/no.such_type.v1.json", nil); r.Status != 404 {
		t.Errorf("an unknown type's schema: %d", r.Status)
	}
}

// Every recorded event (testdata/events_0c7eea4.jsonl, what Cairn published
// before the contracts existed) has data that matches its type's served
// schema and an envelope that matches its AsyncAPI message.
func TestRecordedEventsMatchTheirSchemas(t *testing.T) {
	a := startContractApp(t)
	admin := []string{"Authorization", "Bearer " + contractToken}
	docs := map[outbox.Visibility]*docSchemas{}
	for v, path := range map[outbox.Visibility]string{outbox.Public: "/asyncapi.json", outbox.Internal: "/asyncapi-internal.json"} {
		docs[v] = newDocSchemas(t, "https://cairn.test"+path, []byte(testenv.Do(t, "GET", a.URL+path, nil, admin...).Raw))
	}
	for _, r := range readRecorded(t) {
		var ce outbox.CloudEvent
		if err := json.Unmarshal(r.Event, &ce); err != nil {
			t.Fatal(err)
		}
		d, _ := outbox.Lookup(ce.Type)
		if err := docs[d.Visibility].validate(t, "/components/messages/"+ce.Type+"/payload", r.Event); err != nil {
			t.Errorf("%s: the envelope does not match the AsyncAPI message: %v", ce.Type, err)
		}
		if err := validateData(t, a, ce.Type, ce.Data); err != nil {
			t.Errorf("%s: the data does not match %s: %v", ce.Type, outbox.SchemaPath(ce.Type), err)
		}
		if validateData(t, a, ce.Type, []byte(`{"not_a_field":1}`)) == nil {
			t.Errorf("%s: the schema takes any object", ce.Type)
		}
	}
}

// validateData checks data against the schema Cairn serves for the type.
func validateData(t *testing.T, a *testenv.App, eventType string, data []byte) error {
	t.Helper()
	r := testenv.Do(t, "GET", a.URL+outbox.SchemaPath(eventType), nil, "Authorization", "Bearer "+contractToken)
	if r.Status != 200 {
		t.Fatalf("schema of %s: %d", eventType, r.Status)
	}
	return newDocSchemas(t, "https://cairn.test"+outbox.SchemaPath(eventType), []byte(r.Raw)).validate(t, "", data)
}

// An outside consumer reading Cairn's streams with the CloudEvents Go SDK
// decodes every event type the modules publish: a valid CloudEvent with
// Cairn's extensions, carried with Content-Type
// application/cloudevents+json, whose envelope matches its AsyncAPI
// message and whose dataschema is the URL where Cairn serves the schema
// its data matches. The session signs a user up and moves money, then
// runs orders through every outcome (approved; rejected for credit, stock
// and payment; cancelled after approval), so every type of the catalog is
// published at least once.
func TestEventsDecodeWithTheCloudEventsSDK(t *testing.T) {
	a := startContractApp(t)
	const trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	must := func(r testenv.Response, status int) testenv.Response {
		t.Helper()
		if r.Status != status {
			t.Fatalf("%d %s", r.Status, r.Raw)
		}
		return r
	}
	must(a.API("POST", "/users", map[string]string{"username": "Ada", "email": "ada@example.com", "password": "correct horse battery"}, "traceparent", trace), 201)
	a.Drain()
	var token string
	for _, m := range a.Stream(outbox.InternalStream) {
		var d struct{ Token string }
		_ = json.Unmarshal(m.Data, &d)
		token = d.Token
	}
	must(a.API("POST", "/users/activate", map[string]string{"token": token}), 200)
	id := must(a.API("POST", "/accounts", map[string]string{"owner": "Ada", "currency": "EUR"}), 201).Body["id"].(string)
	must(a.API("POST", "/accounts/"+id+"/deposits", map[string]int{"amount": 12345}), 201)
	must(a.API("POST", "/accounts/"+id+"/withdrawals", map[string]int{"amount": 345}), 201)
	runEveryOrderOutcome(t, a, must)
	// A second person, forgotten: privacy.subject_forgotten.v1.
	admin := []string{"Authorization", "Bearer " + contractToken}
	bo := must(a.API("POST", "/users", map[string]string{"username": "Bo", "email": "bo@example.com", "password": "correct horse battery"}, "traceparent", trace), 201).Body["id"].(string)
	a.Drain()
	must(a.API("DELETE", "/admin/subjects/"+bo, nil, admin...), 202)
	a.Drain()

	docs := map[outbox.Visibility]*docSchemas{}
	for v, path := range map[outbox.Visibility]string{outbox.Public: "/asyncapi.json", outbox.Internal: "/asyncapi-internal.json"} {
		docs[v] = newDocSchemas(t, "https://cairn.test"+path, []byte(testenv.Do(t, "GET", a.URL+path, nil, admin...).Raw))
	}
	seen := map[string]bool{}
	for _, m := range append(a.Stream(outbox.PublicStream), a.Stream(outbox.InternalStream)...) {
		ev := cloudevents.NewEvent()
		if err := json.Unmarshal([]byte(m.Raw), &ev); err != nil {
			t.Fatalf("the SDK cannot decode %s: %v\n%s", m.NATSSubject, err, m.Raw)
		}
		if err := ev.Validate(); err != nil {
			t.Errorf("%s is not a valid CloudEvent: %v", ev.Type(), err)
		}
		seen[ev.Type()] = true
		d, ok := outbox.Lookup(ev.Type())
		if !ok || d.Subject() != m.NATSSubject || ev.Source() != outbox.Source(outbox.Module(ev.Type())) || ev.ID() != m.ID ||
			ev.Subject() == "" || ev.DataContentType() != "application/json" || ev.SpecVersion() != "1.0" {
			t.Errorf("%s: decoded as %s", m.NATSSubject, ev)
		}
		ext := ev.Extensions()
		for _, name := range []string{"correlationid", "causationid"} {
			if v, _ := ext[name].(string); v == "" {
				t.Errorf("%s: extension %s missing: %v", ev.Type(), name, ext)
			}
		}
		if ev.Type() == "users.account_created.v1" && ext["traceparent"] != trace {
			t.Errorf("%s: traceparent %v, want the request's", ev.Type(), ext["traceparent"])
		}
		u, err := url.Parse(ev.DataSchema())
		if err != nil || u.Scheme+"://"+u.Host != "https://cairn.example.com" || u.Path != outbox.SchemaPath(ev.Type()) {
			t.Errorf("%s: dataschema %q", ev.Type(), ev.DataSchema())
		}
		if ct := m.Header.Get("Content-Type"); ct != "application/cloudevents+json" {
			t.Errorf("%s: NATS Content-Type %q", ev.Type(), ct)
		}
		if err := docs[d.Visibility].validate(t, "/components/messages/"+ev.Type()+"/payload", []byte(m.Raw)); err != nil {
			t.Errorf("%s: the envelope does not match the AsyncAPI message: %v", ev.Type(), err)
		}
		if seen[ev.Type()] {
			continue // one of each is enough for the schema
		}
		seen[ev.Type()] = true
		if err := validateData(t, a, ev.Type(), ev.Data()); err != nil {
			t.Errorf("%s: the data does not match its schema: %v\n%s", ev.Type(), err, ev.Data())
		}
	}
	for _, d := range outbox.Catalog() {
		if !seen[d.Type] {
			t.Errorf("%s was not published by the session: extend it", d.Type)
		}
	}
}

// runEveryOrderOutcome runs orders to each outcome with the simulated
// gateway (it declines above CAIRN_PAYMENTS_DECLINE_ABOVE, 100,000 minor
// units by default): one approved; one rejected for each reason (credit,
// stock, payment); one approved and then cancelled, which voids its
// payment and releases its stock and credit.
func runEveryOrderOutcome(t *testing.T, a *testenv.App, must func(testenv.Response, int) testenv.Response) {
	t.Helper()
	eur := func(n int64) map[string]any { return map[string]any{"amount": n, "currency": "EUR"} }
	rich := must(a.API("POST", "/customers", map[string]any{"name": "Ada", "credit_limit": eur(10_000_000)}), 201).Body["id"]
	poor := must(a.API("POST", "/customers", map[string]any{"name": "Bo", "credit_limit": eur(100)}), 201).Body["id"]
	must(a.API("POST", "/inventory/items", map[string]any{"sku": "apple", "name": "Apple", "unit_price": eur(150), "on_hand": 10}), 201)
	must(a.API("POST", "/inventory/items", map[string]any{"sku": "gold", "name": "Gold", "unit_price": eur(60_000), "on_hand": 5}), 201)
	must(a.API("POST", "/inventory/items/apple/restock", map[string]any{"quantity": 5}), 200)
	must(a.API("POST", "/inventory/items/apple/price", map[string]any{"unit_price": eur(200)}), 200)
	// The orders module prices orders and checks customers from its own
	// copies, fed by those events.
	a.Drain()
	place := func(customer any, sku string, quantity int) string {
		t.Helper()
		r := must(a.API("POST", "/orders", map[string]any{"customer_id": customer, "lines": []map[string]any{{"sku": sku, "quantity": quantity}}}), 201)
		return r.Body["id"].(string)
	}
	settled := func(id, want string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			r := must(a.API("GET", "/orders/"+id, nil), 200)
			if r.Body["status"] == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("order %s: %s, want %s", id, r.Raw, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	settled(place(rich, "apple", 2), "approved")
	settled(place(poor, "apple", 1), "rejected")    // credit
	settled(place(rich, "apple", 1000), "rejected") // stock
	settled(place(rich, "gold", 2), "rejected")     // payment: 120,000 declined
	cancelled := place(rich, "apple", 1)
	settled(cancelled, "approved")
	must(a.API("POST", "/orders/"+cancelled+"/cancel", nil), 202)
	settled(cancelled, "cancelled")
}
