package outbox_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/cairn-dev/cairn/outbox"
)

// Sealing replaces each secret field, nested ones included, by a string
// "sealed:v1:…" that holds nothing of the value in clear; unsealing with
// the same key gives back the event as it was (numbers as written).
// Another key, an altered value, or a sealed value moved into another
// event opens to outbox.Redacted; RedactEvent shows a sealed value as
// Redacted; sealing twice changes nothing.
func TestSealEventRoundTripsAndHidesSecrets(t *testing.T) {
	raw := `{"specversion":"1.0","id":"e1","type":"kit.credentials_issued.v1","subject":"k","time":"2026-11-30T00:00:00Z",` +
		`"data":{"user_id":"u1","token":"tok-abc","inner":{"key":"k-xyz","count":12345678901234567}},"correlationid":"r1"}`
	s, err := outbox.NewSealer(outbox.NewSecretKey())
	if err != nil {
		t.Fatal(err)
	}
	sealed, changed := s.SealEvent([]byte(raw))
	if !changed || strings.Contains(string(sealed), "tok-abc") || strings.Contains(string(sealed), "k-xyz") {
		t.Fatalf("not sealed: %s", sealed)
	}
	var ev struct {
		ID   string `json:"id"`
		Data struct {
			UserID string `json:"user_id"`
			Token  string `json:"token"` // still a string
			Inner  struct {
				Key   string `json:"key"`
				Count int64  `json:"count"`
			} `json:"inner"`
		} `json:"data"`
	}
	if err := json.Unmarshal(sealed, &ev); err != nil {
		t.Fatalf("a sealed event must keep its JSON types: %v", err)
	}
	if ev.ID != "e1" || ev.Data.UserID != "u1" || ev.Data.Inner.Count != 12345678901234567 ||
		!strings.HasPrefix(ev.Data.Token, outbox.SealedPrefix) || !strings.HasPrefix(ev.Data.Inner.Key, outbox.SealedPrefix) {
		t.Fatalf("sealed event: %+v", ev)
	}
	if again, changed := s.SealEvent(sealed); changed || string(again) != string(sealed) {
		t.Fatalf("sealing twice changed %s", again)
	}
	if shown, _ := outbox.RedactEvent(sealed); strings.Contains(string(shown), outbox.SealedPrefix) || strings.Count(string(shown), outbox.Redacted) != 2 {
		t.Fatalf("what operators see: %s", shown)
	}

	opened, unopened := s.UnsealEvent(sealed)
	if unopened != 0 {
		t.Fatalf("%d fields not opened", unopened)
	}
	var want, got map[string]any
	_ = json.Unmarshal([]byte(raw), &want)
	if err := json.Unmarshal(opened, &got); err != nil || !jsonEqual(want, got) || !strings.Contains(string(opened), "12345678901234567") {
		t.Fatalf("unsealed %s, want %s", opened, raw)
	}

	other, _ := outbox.NewSealer(outbox.NewSecretKey())
	if out, unopened := other.UnsealEvent(sealed); unopened != 2 || strings.Count(string(out), outbox.Redacted) != 2 {
		t.Fatalf("another key opened %d unopened: %s", unopened, out)
	}
	// A sealed token moved into another event does not open there.
	moved := strings.Replace(string(sealed), `"id":"e1"`, `"id":"e2"`, 1)
	if out, unopened := s.UnsealEvent([]byte(moved)); unopened != 2 || strings.Contains(string(out), "tok-abc") {
		t.Fatalf("a sealed value opened in another event: %s", out)
	}
	if _, err := outbox.NewSealer(make([]byte, 16)); err == nil {
		t.Fatal("a 16-byte key was taken")
	}
	plain := `{"specversion":"1.0","id":"e1","type":"no.such_type.v1","data":{"token":"x"}}`
	if out, changed := s.SealEvent([]byte(plain)); changed || string(out) != plain {
		t.Fatalf("an event without declared secrets changed: %s", out)
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
