package mail_test

import (
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/cairn-dev/cairn/config"
	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/modules/mail"
	"github.com/cairn-dev/cairn/testenv"
	"github.com/cairn-dev/cairn/web"
)

// The mailbox holds working activation tokens: it answers requests whose
// TCP peer is on this machine, and refuses everyone else with 403, whatever
// forwarded headers they send.
func TestMailboxAnswersLoopbackOnly(t *testing.T) {
	db := testenv.MustDB(t)
	e := web.NewServer(slog.New(slog.DiscardHandler))
	if _, err := mail.New(modules.Deps{Pool: db.Pool, Config: config.Default(), API: e.Group("/api/v1")}); err != nil {
		t.Fatal(err)
	}
	for peer, want := range map[string]int{
		"127.0.0.1:50000": 200, "127.0.0.53:50000": 200, "[::1]:50000": 200,
		"192.0.2.7:50000": 403, "[2001:db8::1]:50000": 403, "10.0.0.1:50000": 403,
	} {
		req := httptest.NewRequest("GET", "/api/v1/mail/messages?to=ada@example.com", nil)
		req.RemoteAddr = peer
		req.Header.Set("X-Forwarded-For", "127.0.0.1")
		req.Header.Set("X-Real-Ip", "127.0.0.1")
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		var body web.ErrorBody
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		if rec.Code != want || want == 403 && body.Error.Code != "mailbox_loopback_only" {
			t.Errorf("from %s: %d %s, want %d", peer, rec.Code, rec.Body, want)
		}
	}
	// The 403 is part of the route's contract.
	doc, _, err := web.OpenAPI(e, "test")
	if err != nil {
		t.Fatal(err)
	}
	op, _ := doc["paths"].(map[string]any)["/api/v1/mail/messages"].(map[string]any)["get"].(map[string]any)
	if _, ok := op["responses"].(map[string]any)["403"]; !ok {
		t.Errorf("/openapi.json does not document the 403: %v", op["responses"])
	}
}
