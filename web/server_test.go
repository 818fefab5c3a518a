package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/errs"
)

func serve(t *testing.T, h echo.HandlerFunc, req *http.Request) (int, ErrorBody) {
	t.Helper()
	e := NewServer(slog.New(slog.DiscardHandler))
	e.POST("/x", h)
	e.GET("/x", h)
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	var body ErrorBody
	if rec.Code >= 400 {
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("error response is not the JSON error shape: %q", rec.Body.String())
		}
	}
	return rec.Code, body
}

func TestErrorsMapToStatusesAndHideInternals(t *testing.T) {
	cases := []struct {
		err    error
		status int
		code   string
	}{
		{errs.New(errs.NotFound, "not_found", "no such thing"), 404, "not_found"},
		{fmt.Errorf("wrapped: %w", errs.New(errs.Conflict, "email_taken", "taken")), 409, "email_taken"},
		{errs.Validation(map[string]string{"a": "bad"}), 400, "validation_failed"},
		{errs.New(errs.Unprocessable, "insufficient_funds", "no"), 422, "insufficient_funds"},
		{errs.New(errs.Unauthorized, "unauthorized", "no"), 401, "unauthorized"},
		{errors.New("pq: password authentication failed for secret-host"), 500, "internal"},
	}
	for _, c := range cases {
		status, body := serve(t, func(echo.Context) error { return c.err }, httptest.NewRequest("GET", "/x", nil))
		if status != c.status || body.Error.Code != c.code {
			t.Errorf("%v: got %d %s, want %d %s", c.err, status, body.Error.Code, c.status, c.code)
		}
		if strings.Contains(body.Error.Message, "secret-host") {
			t.Errorf("internal cause leaked: %q", body.Error.Message)
		}
	}
}

func TestBindJSON(t *testing.T) {
	type req struct {
		Name  string `json:"name"`
		Count int    `json:"count"`
	}
	bind := func(c echo.Context) error {
		var r req
		if err := BindJSON(c, &r); err != nil {
			return err
		}
		return c.NoContent(204)
	}
	post := func(ct string, body io.Reader) *http.Request {
		r := httptest.NewRequest("POST", "/x", body)
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		return r
	}
	// A chunked body has no Content-Length: the limit still applies while reading.
	chunked := post("application/json", io.MultiReader(strings.NewReader(`{"name":"`), strings.NewReader(strings.Repeat("a", BodyLimit+10)), strings.NewReader(`"}`)))
	chunked.ContentLength = -1
	cases := []struct {
		name   string
		req    *http.Request
		status int
		code   string
		field  string
	}{
		{"ok", post("application/json; charset=utf-8", strings.NewReader(`{"name":"a","count":2}`)), 204, "", ""},
		{"not json", post("text/plain", strings.NewReader(`hi`)), 415, "unsupported_media_type", ""},
		{"no content type", post("", strings.NewReader(`{}`)), 415, "unsupported_media_type", ""},
		{"malformed", post("application/json", strings.NewReader(`{"name":`)), 400, "validation_failed", "body"},
		{"empty", post("application/json", strings.NewReader(``)), 400, "validation_failed", "body"},
		{"unknown field", post("application/json", strings.NewReader(`{"nme":"a"}`)), 400, "validation_failed", "nme"},
		{"wrong type", post("application/json", strings.NewReader(`{"count":"2"}`)), 400, "validation_failed", "count"},
		{"two objects", post("application/json", strings.NewReader(`{}{}`)), 400, "validation_failed", "body"},
		{"too large, declared", post("application/json", strings.NewReader(`{"name":"`+strings.Repeat("a", BodyLimit)+`"}`)), 413, "payload_too_large", ""},
		{"too large, chunked", chunked, 413, "payload_too_large", ""},
	}
	for _, c := range cases {
		status, body := serve(t, bind, c.req)
		if status != c.status || body.Error.Code != c.code {
			t.Errorf("%s: got %d %+v, want %d %s", c.name, status, body, c.status, c.code)
			continue
		}
		if c.field != "" && body.Error.Fields[c.field] == "" {
			t.Errorf("%s: no message for field %q: %+v", c.name, c.field, body)
		}
	}
}
