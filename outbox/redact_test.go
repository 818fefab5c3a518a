package outbox_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/cairn-dev/cairn/outbox"
)

type credentials struct {
	UserID string `json:"user_id"`
	Token  string `json:"token" cairn:"secret"`
	Inner  struct {
		Key   string `json:"key" cairn:"secret"`
		Count int64  `json:"count"`
	} `json:"inner"`
}

var credentialsIssued = outbox.Declare[credentials](outbox.EventSpec{
	Type: "kit.credentials_issued.v1", Visibility: outbox.Internal,
	Description: "Credentials were issued (redaction test).",
})

// The secret fields of an event, nested ones included, are replaced by
// outbox.Redacted; everything else (the envelope, other fields, numbers as
// written) is kept, and a type without secrets comes back untouched.
func TestRedactEventReplacesSecretFields(t *testing.T) {
	raw := `{"specversion":"1.0","id":"e1","type":"kit.credentials_issued.v1","subject":"k","time":"2026-11-30T00:00:00Z",` +
		`"data":{"user_id":"u1","token":"tok-abc","inner":{"key":"k-xyz","count":12345678901234567}},"correlationid":"r1"}`
	out, changed := outbox.RedactEvent([]byte(raw))
	if !changed || strings.Contains(string(out), "tok-abc") || strings.Contains(string(out), "k-xyz") {
		t.Fatalf("not redacted: %s", out)
	}
	var ev struct {
		ID            string      `json:"id"`
		CorrelationID string      `json:"correlationid"`
		Data          credentials `json:"data"`
	}
	if err := json.Unmarshal(out, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.ID != "e1" || ev.CorrelationID != "r1" || ev.Data.UserID != "u1" || ev.Data.Token != outbox.Redacted ||
		ev.Data.Inner.Key != outbox.Redacted || ev.Data.Inner.Count != 12345678901234567 {
		t.Fatalf("redacted event: %+v", ev)
	}
	if again, changed := outbox.RedactEvent(out); changed || string(again) != string(out) {
		t.Fatalf("redacting twice changed %s", again)
	}
	if _, changed := outbox.RedactData(credentialsIssued.Name(), json.RawMessage(`"not an object"`)); !changed {
		t.Fatal("unreadable data of a type with secrets was kept")
	}
	plain := `{"type":"kit.order_placed.v1","data":{"order_id":"o1"}}`
	if out, changed := outbox.RedactEvent([]byte(plain)); changed || string(out) != plain {
		t.Fatalf("a type without secrets changed: %s", out)
	}
}
