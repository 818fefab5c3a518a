package web

import (
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

// Every bad field is reported in one answer, each with a message that
// names its real problem; a body that is not UTF-8, or that smuggles an
// unpaired surrogate escape, is refused instead of being decoded with
// U+FFFD in place of what was sent.
func TestBindJSONReportsEveryField(t *testing.T) {
	type req struct {
		Name   *string `json:"name"`
		Amount *int64  `json:"amount"`
		Count  uint8   `json:"count"`
		Ok     bool    `json:"ok"`
	}
	var got req
	bind := func(c echo.Context) error {
		got = req{}
		if err := BindJSON(c, &got); err != nil {
			return err
		}
		return c.NoContent(204)
	}
	post := func(body string) (int, ErrorBody) {
		r := httptest.NewRequest("POST", "/x", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		return serve(t, bind, r)
	}
	status, body := post(`{"name":7,"amount":99999999999999999999,"count":-1,"ok":"yes","extra":1}`)
	want := map[string]string{
		"name":   "must be a string",
		"amount": "is too large: at most 9223372036854775807",
		"count":  "must not be negative",
		"ok":     "must be a boolean",
		"extra":  "is not a known field",
	}
	if status != 400 || body.Error.Code != "validation_failed" || len(body.Error.Fields) != len(want) {
		t.Fatalf("got %d %+v, want every field at once", status, body)
	}
	for f, msg := range want {
		if body.Error.Fields[f] != msg {
			t.Errorf("field %s: %q, want %q", f, body.Error.Fields[f], msg)
		}
	}
	for body, want := range map[string]string{
		`{"amount":-99999999999999999999}`: "is too small: at least -9223372036854775808",
		`{"amount":1.5}`:                   "must be a whole number",
		`{"count":256}`:                    "is too large: at most 255",
	} {
		if _, b := post(body); b.Error.Fields["amount"]+b.Error.Fields["count"] != want {
			t.Errorf("%s: %+v, want %q", body, b, want)
		}
	}
	// The fields that decoded are set, so a handler can add its own checks.
	if status, _ := post(`{"name":"ada","amount":"5"}`); status != 400 || got.Name == nil || *got.Name != "ada" || got.Amount != nil {
		t.Fatalf("after a partial failure: %+v", got)
	}
	for name, raw := range map[string]string{
		"invalid UTF-8":       "{\"name\":\"a\xffb\"}",
		"lone high surrogate": `{"name":"a\ud800b"}`,
		"lone low surrogate":  `{"name":"\udc00"}`,
		"not an object":       `["name"]`,
	} {
		if status, body := post(raw); status != 400 || body.Error.Fields["body"] == "" {
			t.Errorf("%s: %d %+v, want 400 naming the body", name, status, body)
		}
	}
	if status, _ := post(`{"name":"\ud83d\ude00 é"}`); status != 204 || *got.Name != "😀 é" {
		t.Errorf("a paired surrogate escape: %d %q", status, *got.Name)
	}
}

// A wrong value inside a nested object is named by its path from the body
// (lines.quantity), not by the top-level field with the path in the message.
func TestBindJSONNamesNestedFields(t *testing.T) {
	type line struct {
		SKU      string `json:"sku"`
		Quantity int    `json:"quantity"`
	}
	type req struct {
		Lines []line `json:"lines"`
	}
	bind := func(c echo.Context) error { return BindJSON(c, &req{}) }
	r := httptest.NewRequest("POST", "/x", strings.NewReader(`{"lines":[{"sku":"a","quantity":"two"}]}`))
	r.Header.Set("Content-Type", "application/json")
	status, body := serve(t, bind, r)
	if status != 400 || body.Error.Fields["lines.quantity"] != "must be a whole number" || len(body.Error.Fields) != 1 {
		t.Fatalf("%d %+v, want lines.quantity named", status, body)
	}
}

// JSON answers say what they mean: no \u003e for ">", and never sniffed
// as HTML.
func TestJSONIsNotHTMLEscaped(t *testing.T) {
	e := NewServer(slog.New(slog.DiscardHandler))
	e.GET("/x", func(c echo.Context) error { return c.JSON(200, map[string]string{"m": "a > b & <c>"}) })
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
	if !strings.Contains(rec.Body.String(), `"a > b & <c>"`) || rec.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("%s %v", rec.Body.String(), rec.Header())
	}
}

// A path that is a route for other methods answers 405 with the error
// shape and Allow, even when a parameter route of the request's method
// would take it (GET /users/activate against GET /users/:id).
func TestWrongMethodOnARouteIs405(t *testing.T) {
	e := NewServer(slog.New(slog.DiscardHandler))
	h := func(c echo.Context) error { return c.NoContent(204) }
	e.POST("/api/v1/users", h)
	e.POST("/api/v1/users/activate", h)
	e.GET("/api/v1/users/:id", h)
	for _, c := range []struct{ method, path, allow string }{
		{"GET", "/api/v1/users/activate", "OPTIONS, POST"},
		{"DELETE", "/api/v1/users/activate", "OPTIONS, POST"},
		{"GET", "/api/v1/users", "OPTIONS, POST"},
		{"PUT", "/api/v1/users/0193a0b2-7c4e-7000-8000-000000000000", "OPTIONS, GET"},
	} {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(c.method, c.path, nil))
		var body ErrorBody
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		if rec.Code != 405 || body.Error.Code != "method_not_allowed" || rec.Header().Get("Allow") != c.allow {
			t.Errorf("%s %s: %d %s Allow=%q, want 405 method_not_allowed Allow=%q", c.method, c.path, rec.Code, rec.Body, rec.Header().Get("Allow"), c.allow)
		}
	}
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/users/0193a0b2-7c4e-7000-8000-000000000000", nil))
	if rec.Code != 204 {
		t.Fatalf("GET of the parameter route: %d", rec.Code)
	}
}
