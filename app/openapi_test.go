package app_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/config"
	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/testenv"
)

// /openapi.json is a valid OpenAPI 3.1 document (against the official
// schema), documents exactly the routes the app serves under /api/v1 (a
// route registered without web.Handle fails this, and so does a documented
// one the app no longer serves), and every answer of a session that calls
// every route, successes and errors, matches the schema documented for
// its status. The API reference renders every operation.
func TestOpenAPIDocumentIsValidAndComplete(t *testing.T) {
	const token = "openapi-test-token"
	// Published rows move into the lake at once, so its queries have
	// something to answer.
	a := testenv.StartApp(t, testenv.AppOptions{Config: func(c *config.Config) { c.AdminToken = token }, RelayDeleteDelay: time.Millisecond})
	r := testenv.Do(t, "GET", a.URL+"/openapi.json", nil)
	if r.Status != 200 {
		t.Fatalf("/openapi.json: %d %s", r.Status, r.Raw)
	}
	raw := []byte(r.Raw)
	if err := mustMetaSchema(t, "openapi-3.1.schema.json").Validate(mustJSON(t, raw)); err != nil {
		t.Fatalf("not a valid OpenAPI 3.1 document: %v", err)
	}
	var doc struct {
		Paths map[string]map[string]struct {
			Undocumented bool                       `json:"x-undocumented"`
			Responses    map[string]json.RawMessage `json:"responses"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}

	// Parity: the routes and the document name the same operations.
	served := map[string]bool{}
	param := regexp.MustCompile(`:([a-z_]+)`)
	for _, rt := range a.App.Routes() {
		if strings.HasPrefix(rt.Path, "/api/v1/") && rt.Method != "echo_route_not_found" {
			served[rt.Method+" "+param.ReplaceAllString(rt.Path, "{$1}")] = true
		}
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths {
		for method, op := range item {
			key := strings.ToUpper(method) + " " + path
			documented[key] = true
			if op.Undocumented {
				t.Errorf("%s is served without documentation: register it with web.Handle", key)
			}
			if !served[key] {
				t.Errorf("%s is documented but not served", key)
			}
		}
	}
	for key := range served {
		if !documented[key] {
			t.Errorf("%s is served but not in /openapi.json", key)
		}
	}

	// Every answer matches its documented schema.
	schemas := newDocSchemas(t, "https://cairn.test/openapi.json", raw)
	checked := map[string]bool{}
	call := func(method, route, path string, body any, wantStatus int, header ...string) testenv.Response {
		t.Helper()
		resp := testenv.Do(t, method, a.URL+path, body, header...)
		if resp.Status != wantStatus {
			t.Fatalf("%s %s: %d %s, want %d", method, path, resp.Status, resp.Raw, wantStatus)
		}
		status := strconv.Itoa(resp.Status)
		if _, ok := doc.Paths[route][strings.ToLower(method)].Responses[status]; !ok {
			t.Errorf("%s %s answered %s, which is not documented", method, route, status)
			return resp
		}
		ptr := "/paths/" + pointerEscape(route) + "/" + strings.ToLower(method) + "/responses/" + status
		if resp.Raw == "" {
			return resp
		}
		if resp.Header.Get("Content-Type") == "text/event-stream" {
			// A stream of Server-Sent Events: each event's data
			// against the schema documented for it.
			n := 0
			for _, line := range strings.Split(resp.Raw, "\n") {
				if data, ok := strings.CutPrefix(line, "data: "); ok {
					n++
					if err := schemas.validate(t, ptr+"/content/text~1event-stream/x-event-data", []byte(data)); err != nil {
						t.Errorf("%s %s streamed an event that does not match its schema: %v\n%s", method, path, err, data)
					}
				}
			}
			if n == 0 {
				t.Errorf("%s %s streamed no event:\n%s", method, path, resp.Raw)
			}
		} else if err := schemas.validate(t, ptr+"/content/application~1json/schema", []byte(resp.Raw)); err != nil {
			t.Errorf("%s %s answered %s that does not match its schema: %v\n%s", method, path, status, err, resp.Raw)
		}
		checked[strings.ToUpper(method)+" "+route] = true
		return resp
	}
	admin := []string{"Authorization", "Bearer " + token}
	const nobody = "0193a3b0-0000-7000-8000-000000000000"

	u := call("POST", "/api/v1/users", "/api/v1/users", map[string]string{"username": "Ada", "email": "ada@example.com", "password": "correct horse battery"}, 201)
	call("POST", "/api/v1/users", "/api/v1/users", map[string]string{"username": "Ada"}, 400)
	call("POST", "/api/v1/users", "/api/v1/users", map[string]string{"username": "Ada2", "email": "ada@example.com", "password": "correct horse battery"}, 409)
	call("GET", "/api/v1/users/{id}", "/api/v1/users/"+u.Body["id"].(string), nil, 200)
	call("GET", "/api/v1/users/{id}", "/api/v1/users/"+nobody, nil, 404)
	call("POST", "/api/v1/users/activation-emails", "/api/v1/users/activation-emails", map[string]string{"email": "ada@example.com"}, 202)
	call("POST", "/api/v1/users/activation-emails", "/api/v1/users/activation-emails", map[string]string{"email": "ada@example.com"}, 429)
	a.Drain()
	var token2 string
	for _, m := range a.Stream(outbox.InternalStream) {
		var d struct{ Token string }
		_ = json.Unmarshal(m.Data, &d)
		token2 = d.Token
	}
	call("POST", "/api/v1/users/activate", "/api/v1/users/activate", map[string]string{"token": "nope"}, 400)
	call("POST", "/api/v1/users/activate", "/api/v1/users/activate", map[string]string{"token": token2}, 200)
	call("GET", "/api/v1/mail/messages", "/api/v1/mail/messages?to=ada@example.com", nil, 200)

	acc := call("POST", "/api/v1/accounts", "/api/v1/accounts", map[string]string{"owner": "Ada", "currency": "EUR"}, 201).Body["id"].(string)
	call("GET", "/api/v1/accounts/{id}", "/api/v1/accounts/"+acc, nil, 200)
	call("GET", "/api/v1/accounts/{id}", "/api/v1/accounts/"+acc+"?as_of=yesterday", nil, 400)
	call("POST", "/api/v1/accounts/{id}/deposits", "/api/v1/accounts/"+acc+"/deposits", map[string]int{"amount": 500}, 201, "Idempotency-Key", "d-1")
	call("POST", "/api/v1/accounts/{id}/withdrawals", "/api/v1/accounts/"+acc+"/withdrawals", map[string]int{"amount": 5000}, 422)
	call("POST", "/api/v1/accounts/{id}/withdrawals", "/api/v1/accounts/"+acc+"/withdrawals", map[string]int{"amount": 50}, 201)
	call("GET", "/api/v1/accounts/{id}/events", "/api/v1/accounts/"+acc+"/events?limit=1", nil, 200)
	call("GET", "/api/v1/accounts/{id}/events", "/api/v1/accounts/"+acc+"/events?limit=0", nil, 400)
	call("GET", "/api/v1/status", "/api/v1/status", nil, 200)

	a.Drain()
	for deadline := time.Now().Add(30 * time.Second); a.Count(`SELECT count(*) FROM lake.events WHERE subject = $1`, acc) < 3; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the account's events never reached the lake")
		}
	}
	call("GET", "/api/v1/lake/events", "/api/v1/lake/events?limit=3", nil, 200, admin...)
	call("GET", "/api/v1/lake/events", "/api/v1/lake/events?after=x", nil, 400, admin...)
	call("GET", "/api/v1/lake/events", "/api/v1/lake/events", nil, 401)
	call("GET", "/api/v1/lake/subjects/{key}/events", "/api/v1/lake/subjects/"+acc+"/events", nil, 200, admin...)
	call("GET", "/api/v1/lake/subjects/{key}/state", "/api/v1/lake/subjects/"+acc+"/state", nil, 200, admin...)
	call("GET", "/api/v1/lake/subjects/{key}/state", "/api/v1/lake/subjects/"+nobody+"/state", nil, 404, admin...)
	call("GET", "/api/v1/lake/events/{id}/lineage", "/api/v1/lake/events/"+nobody+"/lineage", nil, 404, admin...)

	// Orders across customers, inventory and payments, and their saga.
	eur := func(amount int64) map[string]any { return map[string]any{"amount": amount, "currency": "EUR"} }
	cust := call("POST", "/api/v1/customers", "/api/v1/customers", map[string]any{"name": "Ada", "credit_limit": eur(10_000)}, 201).Body["id"].(string)
	call("POST", "/api/v1/customers", "/api/v1/customers", map[string]any{"name": "Ada"}, 400)
	call("GET", "/api/v1/customers/{id}", "/api/v1/customers/"+cust+"?reservations=5", nil, 200)
	call("GET", "/api/v1/customers/{id}", "/api/v1/customers/"+nobody, nil, 404)
	apple := map[string]any{"sku": "apple", "name": "Apple", "unit_price": eur(150), "on_hand": 10}
	call("POST", "/api/v1/inventory/items", "/api/v1/inventory/items", apple, 201)
	call("POST", "/api/v1/inventory/items", "/api/v1/inventory/items", apple, 409)
	call("GET", "/api/v1/inventory/items/{sku}", "/api/v1/inventory/items/apple", nil, 200)
	call("GET", "/api/v1/inventory/items/{sku}", "/api/v1/inventory/items/no-such-sku", nil, 404)
	call("POST", "/api/v1/inventory/items/{sku}/restock", "/api/v1/inventory/items/apple/restock", map[string]int{"quantity": 5}, 200)
	call("POST", "/api/v1/inventory/items/{sku}/restock", "/api/v1/inventory/items/apple/restock", map[string]int{"quantity": 0}, 400)
	call("POST", "/api/v1/inventory/items/{sku}/price", "/api/v1/inventory/items/apple/price", map[string]any{"unit_price": eur(120)}, 200)
	a.Drain() // the orders module's catalogue follows inventory's events
	lines := []map[string]any{{"sku": "apple", "quantity": 2}}
	order := call("POST", "/api/v1/orders", "/api/v1/orders", map[string]any{"customer_id": cust, "lines": lines}, 201).Body["id"].(string)
	call("POST", "/api/v1/orders", "/api/v1/orders", map[string]any{"customer_id": nobody, "lines": lines}, 404)
	call("POST", "/api/v1/orders", "/api/v1/orders", map[string]any{"customer_id": cust, "lines": []map[string]any{{"sku": "pear", "quantity": 1}}}, 422)
	for deadline := time.Now().Add(30 * time.Second); testenv.Do(t, "GET", a.URL+"/api/v1/orders/"+order, nil).Body["status"] != "approved"; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the order was never approved")
		}
	}
	call("GET", "/api/v1/orders/{id}", "/api/v1/orders/"+order, nil, 200)
	call("GET", "/api/v1/orders/{id}", "/api/v1/orders/not-an-order", nil, 400)
	call("GET", "/api/v1/orders/{id}/updates", "/api/v1/orders/"+order+"/updates", nil, 200) // ends: the outcome is known
	call("GET", "/api/v1/orders/{id}/updates", "/api/v1/orders/"+nobody+"/updates", nil, 404)
	call("GET", "/api/v1/payments/{id}", "/api/v1/payments/"+order, nil, 200)
	call("GET", "/api/v1/payments/{id}", "/api/v1/payments/not-a-payment", nil, 400)
	call("GET", "/api/v1/sagas", "/api/v1/sagas?type=orders_fulfilment&status=completed", nil, 200)
	call("GET", "/api/v1/sagas", "/api/v1/sagas?status=sleeping", nil, 400)
	call("GET", "/api/v1/sagas/{type}/{id}", "/api/v1/sagas/orders_fulfilment/"+order, nil, 200)
	call("GET", "/api/v1/sagas/{type}/{id}", "/api/v1/sagas/orders_fulfilment/"+nobody, nil, 404)
	call("POST", "/api/v1/admin/sagas/{type}/{id}/retry", "/api/v1/admin/sagas/orders_fulfilment/"+order+"/retry", nil, 401)
	call("POST", "/api/v1/admin/sagas/{type}/{id}/retry", "/api/v1/admin/sagas/orders_fulfilment/"+order+"/retry", nil, 409, admin...)
	call("POST", "/api/v1/admin/sagas/{type}/{id}/cancel", "/api/v1/admin/sagas/orders_fulfilment/"+order+"/cancel", nil, 409, admin...)
	call("POST", "/api/v1/admin/sagas/{type}/{id}/cancel", "/api/v1/admin/sagas/orders_fulfilment/"+nobody+"/cancel", nil, 404, admin...)
	call("POST", "/api/v1/orders/{id}/cancel", "/api/v1/orders/"+order+"/cancel", nil, 202)
	call("POST", "/api/v1/orders/{id}/cancel", "/api/v1/orders/"+nobody+"/cancel", nil, 404)

	// The reports answer once their first version is live (503 until then).
	for _, p := range []string{"orders", "sales/daily", "stock", "accounts/daily"} {
		for deadline := time.Now().Add(60 * time.Second); testenv.Do(t, "GET", a.URL+"/api/v1/reports/"+p, nil).Status != 200; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the %s report never went live", p)
			}
		}
	}
	call("GET", "/api/v1/reports/orders", "/api/v1/reports/orders?limit=10&status=approved", nil, 200)
	call("GET", "/api/v1/reports/orders", "/api/v1/reports/orders?limit=0", nil, 400)
	call("GET", "/api/v1/reports/sales/daily", "/api/v1/reports/sales/daily?currency=EUR&from=2026-01-01", nil, 200)
	call("GET", "/api/v1/reports/sales/daily", "/api/v1/reports/sales/daily?currency=euro", nil, 400)
	call("GET", "/api/v1/reports/stock", "/api/v1/reports/stock", nil, 200)
	call("GET", "/api/v1/reports/stock", "/api/v1/reports/stock?sku=x", nil, 400)
	call("GET", "/api/v1/reports/accounts/daily", "/api/v1/reports/accounts/daily?to=2030-01-01", nil, 200)
	call("GET", "/api/v1/reports/accounts/daily", "/api/v1/reports/accounts/daily?from=x", nil, 400)
	call("GET", "/api/v1/admin/projections", "/api/v1/admin/projections", nil, 200, admin...)
	call("GET", "/api/v1/admin/projections", "/api/v1/admin/projections", nil, 401)

	call("GET", "/api/v1/admin/dead-letters", "/api/v1/admin/dead-letters", nil, 401)
	call("GET", "/api/v1/admin/dead-letters", "/api/v1/admin/dead-letters?limit=5", nil, 200, admin...)
	call("POST", "/api/v1/admin/dead-letters/{id}/retry", "/api/v1/admin/dead-letters/"+nobody+"/retry", nil, 404, admin...)
	call("DELETE", "/api/v1/admin/dead-letters/{id}", "/api/v1/admin/dead-letters/"+nobody, nil, 404, admin...)
	call("POST", "/api/v1/admin/consumers/{consumer}/pause", "/api/v1/admin/consumers/mail_activation_email/pause", map[string]string{"reason": "test"}, 200, admin...)
	call("POST", "/api/v1/admin/consumers/{consumer}/resume", "/api/v1/admin/consumers/mail_activation_email/resume", nil, 200, admin...)
	call("POST", "/api/v1/admin/consumers/{consumer}/resume", "/api/v1/admin/consumers/nope/resume", nil, 404, admin...)
	rp := call("POST", "/api/v1/admin/replays", "/api/v1/admin/replays", map[string]string{"consumer": "mail_activation_email", "mode": "dry_run"}, 202, admin...)
	call("POST", "/api/v1/admin/replays", "/api/v1/admin/replays", map[string]string{"consumer": "mail_activation_email", "mode": "rebuild"}, 409, admin...)
	call("POST", "/api/v1/admin/replays", "/api/v1/admin/replays", map[string]string{"consumer": "nope", "mode": "dry_run"}, 404, admin...)
	call("POST", "/api/v1/admin/replays", "/api/v1/admin/replays", map[string]string{"mode": "again"}, 400, admin...)
	call("GET", "/api/v1/admin/replays/{id}", "/api/v1/admin/replays/"+rp.Body["id"].(string), nil, 200, admin...)
	call("GET", "/api/v1/admin/replays/{id}", "/api/v1/admin/replays/"+nobody, nil, 404, admin...)
	call("GET", "/api/v1/admin/replays/{id}/effects", "/api/v1/admin/replays/"+rp.Body["id"].(string)+"/effects?limit=10", nil, 200, admin...)
	call("GET", "/api/v1/admin/replays/{id}/effects", "/api/v1/admin/replays/x/effects", nil, 400, admin...)
	call("DELETE", "/api/v1/admin/subjects/{id}", "/api/v1/admin/subjects/"+u.Body["id"].(string), nil, 202, admin...)
	call("DELETE", "/api/v1/admin/subjects/{id}", "/api/v1/admin/subjects/"+u.Body["id"].(string), nil, 401)

	var unchecked []string
	for key := range served {
		if !checked[key] {
			unchecked = append(unchecked, key)
		}
	}
	sort.Strings(unchecked)
	if len(unchecked) > 0 {
		t.Errorf("no answer of these routes was checked against its schema; call them above: %v", unchecked)
	}

	ref := testenv.Do(t, "GET", a.URL+"/docs/api", nil)
	if ref.Status != http.StatusOK || !strings.Contains(ref.Raw, "<title>Cairn API reference</title>") {
		t.Fatalf("/docs/api: %d", ref.Status)
	}
	for key := range served {
		method, path, _ := strings.Cut(key, " ")
		if !strings.Contains(ref.Raw, ">"+method+"</span><code>"+path+"</code>") {
			t.Errorf("the API reference lacks %s", key)
		}
	}
}
