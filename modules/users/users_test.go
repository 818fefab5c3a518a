package users_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"golang.org/x/crypto/bcrypt"

	"github.com/cairn-dev/cairn/errs"
	"github.com/cairn-dev/cairn/modules/users"
	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/testenv"
)

// 50 sign-ups at once with one address in varying case: exactly one 201,
// 49 × 409 email_taken, one account, one token, one account_created on
// EVENTS and one activation_requested on INTERNAL.
func TestConcurrentSignUpsOneEmail(t *testing.T) {
	a := newApp(t)
	const n = 50
	base := "race.condition@example.com"
	var wg sync.WaitGroup
	results := make(chan response, n)
	seen := map[string]bool{}
	for i := 0; i < n; i++ {
		email := []rune(base)
		for j, c := range email {
			if (i>>(j%6))&1 == 1 {
				email[j] = unicode.ToUpper(c)
			}
		}
		seen[string(email)] = true
		wg.Add(1)
		go func(email string) {
			defer wg.Done()
			results <- a.API("POST", "/users", map[string]any{"username": "racer", "email": email, "password": "hunter2hunter2"})
		}(string(email))
	}
	wg.Wait()
	close(results)
	if len(seen) < 32 {
		t.Fatalf("only %d spellings of the address", len(seen))
	}
	var created []response
	conflicts := 0
	for r := range results {
		switch {
		case r.Status == 201:
			created = append(created, r)
		case r.Status == 409 && r.ErrorCode() == "email_taken":
			conflicts++
		default:
			t.Errorf("unexpected answer %d %s", r.Status, r.Raw)
		}
	}
	if len(created) != 1 || conflicts != n-1 {
		t.Fatalf("%d created and %d email_taken, want 1 and %d", len(created), conflicts, n-1)
	}
	id := created[0].Body["id"].(string)
	if got := a.Count(`SELECT count(*) FROM users.accounts`); got != 1 {
		t.Fatalf("%d accounts, want 1", got)
	}
	if got := a.Count(`SELECT count(*) FROM users.activation_tokens WHERE user_id = $1`, id); got != 1 {
		t.Fatalf("%d activation tokens, want 1", got)
	}
	pub := a.Stream(outbox.PublicStream)
	if evs := pub.OfType(users.EventAccountCreated.Name()); len(evs) != 1 || evs[0].Subject != id || len(pub) != 1 {
		t.Fatalf("EVENTS holds %d messages, %d account_created, want exactly one for %s", len(pub), len(evs), id)
	}
	internal := a.Stream(outbox.InternalStream)
	if evs := internal.OfType(users.EventActivationRequested.Name()); len(evs) != 1 || evs[0].Subject != id || len(internal) != 1 {
		t.Fatalf("INTERNAL holds %d messages, %d activation_requested, want exactly one for %s", len(internal), len(evs), id)
	}
}

// Sign up, take the token from the internal event as the mail module would,
// activate, activate again: the account is active, account_activated was
// published once, the three events are in order, and the password is in no
// event, response, log line or column other than as a bcrypt hash.
func TestSignUpAndActivate(t *testing.T) {
	a := newApp(t)
	ctx := context.Background()
	const password = "Zebra-Quokka-7731-✓"
	signed := a.signUp("  Ada Lovelace ", "Ada@Example.com", password)
	id, _ := signed.Body["id"].(string)
	if signed.Body["username"] != "Ada Lovelace" || signed.Body["email"] != "Ada@Example.com" || signed.Body["status"] != "pending" {
		t.Fatalf("sign-up answer: %s", signed.Raw)
	}
	createdAt, err := time.Parse(time.RFC3339Nano, signed.Body["created_at"].(string))
	if err != nil || time.Since(createdAt) > time.Minute || len(signed.Body) != 5 {
		t.Fatalf("sign-up answer: %s (%v)", signed.Raw, err)
	}
	got := a.API("GET", "/users/"+id, nil)
	if got.Status != 200 || got.Raw != signed.Raw {
		t.Fatalf("GET after sign-up: %d %s, want %s", got.Status, got.Raw, signed.Raw)
	}

	req := a.activationToken(id)
	if req.UserID != id || req.Email != "Ada@Example.com" || req.Username != "Ada Lovelace" || !req.ExpiresAt.Equal(createdAt.Add(24*time.Hour)) {
		t.Fatalf("activation_requested data: %+v", req)
	}
	if raw, err := base64.RawURLEncoding.DecodeString(req.Token); err != nil || len(raw) != 32 {
		t.Fatalf("token %q is not 32 bytes of base64url without padding: %v", req.Token, err)
	}
	hash := sha256.Sum256([]byte(req.Token))
	if n := a.Count(`SELECT count(*) FROM users.activation_tokens
		WHERE token_hash = $1 AND user_id = $2 AND expires_at - issued_at = interval '24 hours'`, hash[:], id); n != 1 {
		t.Fatal("the token is not stored as its SHA-256 hash with a 24-hour lifetime")
	}
	if n := a.Count(`SELECT count(*) FROM users.activation_tokens t WHERE strpos(t::text, $1) > 0`, req.Token); n != 0 {
		t.Fatal("the raw token is stored")
	}

	act := a.API("POST", "/users/activate", map[string]any{"token": req.Token})
	if act.Status != 200 || act.Body["id"] != id || act.Body["status"] != "active" || len(act.Body) != 2 {
		t.Fatalf("activate: %d %s", act.Status, act.Raw)
	}
	got = a.API("GET", "/users/"+id, nil)
	if got.Status != 200 || got.Body["status"] != "active" || got.Body["created_at"] != signed.Body["created_at"] {
		t.Fatalf("GET after activation: %d %s", got.Status, got.Raw)
	}
	again := a.API("POST", "/users/activate", map[string]any{"token": req.Token})
	if again.Status != 200 || again.Raw != act.Raw {
		t.Fatalf("second activation: %d %s", again.Status, again.Raw)
	}
	u, err := a.users.User(ctx, id)
	if err != nil || u.Status != users.StatusActive || u.ActivatedAt.IsZero() {
		t.Fatalf("User: %+v %v", u, err)
	}

	// One user's events, in the order they were appended: created and
	// requested in one transaction, then activated once.
	pub := a.Stream(outbox.PublicStream).OfKey(id)
	internal := a.Stream(outbox.InternalStream).OfKey(id)
	if len(pub) != 2 || pub[0].Type != users.EventAccountCreated.Name() || pub[1].Type != users.EventAccountActivated.Name() {
		t.Fatalf("EVENTS for the user:%s", describe(pub))
	}
	if len(internal) != 1 || internal[0].Type != users.EventActivationRequested.Name() {
		t.Fatalf("INTERNAL for the user:%s", describe(internal))
	}
	ordered := testenv.Messages{pub[0], internal[0], pub[1]}
	subjects := []string{"events.users.account_created.v1", "internal.users.activation_requested.v1", "events.users.account_activated.v1"}
	for i, e := range ordered {
		if e.NATSSubject != subjects[i] || e.Source != "/cairn/users" {
			t.Errorf("event %d on %s from %s, want %s from /cairn/users", i, e.NATSSubject, e.Source, subjects[i])
		}
		if i > 0 && (e.ID <= ordered[i-1].ID || e.Time.Before(ordered[i-1].Time)) {
			t.Errorf("event %d (%s %s) is not after event %d (%s %s)", i, e.Type, e.ID, i-1, ordered[i-1].Type, ordered[i-1].ID)
		}
	}
	var created users.AccountCreated
	if err := json.Unmarshal(pub[0].Data, &created); err != nil || created != (users.AccountCreated{
		UserID: id, Username: "Ada Lovelace", Email: "Ada@Example.com", CreatedAt: createdAt,
	}) {
		t.Fatalf("account_created data: %s %v", pub[0].Data, err)
	}
	var activated users.AccountActivated
	if err := json.Unmarshal(pub[1].Data, &activated); err != nil || activated.UserID != id || !activated.ActivatedAt.Equal(u.ActivatedAt) {
		t.Fatalf("account_activated data: %s %v", pub[1].Data, err)
	}
	if strings.Contains(pub[0].Raw, req.Token) || strings.Contains(pub[1].Raw, req.Token) {
		t.Fatal("the token is in a public event")
	}

	// The password: nowhere but as a bcrypt hash in its column.
	for _, e := range append(pub, internal...) {
		if strings.Contains(e.Raw, password) || strings.Contains(strings.ToLower(e.Raw), "password") {
			t.Fatalf("%s mentions the password: %s", e.Type, e.Raw)
		}
	}
	for _, r := range []response{signed, got, act, again} {
		if strings.Contains(r.Raw, password) || strings.Contains(r.Raw, "password") || strings.Contains(r.Raw, "$2a$") {
			t.Fatalf("a response mentions the password: %s", r.Raw)
		}
	}
	if logs := a.Logs(); logs == "" || strings.Contains(logs, password) || strings.Contains(logs, req.Token) {
		t.Fatalf("the logs hold the password or the token (or nothing at all):\n%s", logs)
	}
	var stored string
	if err := a.DB.Pool.QueryRow(ctx, `SELECT password_hash FROM users.accounts WHERE id = $1`, id).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if cost, err := bcrypt.Cost([]byte(stored)); err != nil || cost != bcrypt.DefaultCost {
		t.Fatalf("password_hash %q is not a bcrypt hash at the default cost: %v", stored, err)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(stored), []byte(password)); err != nil {
		t.Fatalf("the stored hash does not match the password: %v", err)
	}
	if n := a.Count(`SELECT count(*) FROM users.accounts a WHERE strpos(a::text, $1) > 0`, password); n != 0 {
		t.Fatal("the password is stored in clear")
	}
}

// Ten activations with one token at once: all answer 200 active, and only
// one account_activated is published.
func TestConcurrentActivationsOneEvent(t *testing.T) {
	a := newApp(t)
	id := a.signUp("grace", "grace@example.com", "compiler-1952").Body["id"].(string)
	token := a.activationToken(id).Token
	var wg sync.WaitGroup
	results := make(chan response, 10)
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results <- a.API("POST", "/users/activate", map[string]any{"token": token})
		}()
	}
	wg.Wait()
	close(results)
	for r := range results {
		if r.Status != 200 || r.Body["id"] != id || r.Body["status"] != "active" {
			t.Errorf("activate: %d %s", r.Status, r.Raw)
		}
	}
	if evs := a.Stream(outbox.PublicStream).OfType(users.EventAccountActivated.Name()); len(evs) != 1 || evs[0].Subject != id {
		t.Fatalf("%d account_activated events, want 1 for %s", len(evs), id)
	}
}

// An expired token and an unknown one both answer 400 invalid_token with
// the same message, and activate nothing.
func TestInvalidActivationTokens(t *testing.T) {
	a := newApp(t)
	ctx := context.Background()
	id := a.signUp("linus", "linus@example.com", "penguins-rule").Body["id"].(string)
	token := a.activationToken(id).Token
	if _, err := a.DB.Pool.Exec(ctx, `UPDATE users.activation_tokens
		SET issued_at = now() - interval '25 hours', expires_at = now() - interval '1 hour' WHERE user_id = $1`, id); err != nil {
		t.Fatal(err)
	}
	expired := a.API("POST", "/users/activate", map[string]any{"token": token})
	if expired.Status != 400 || expired.ErrorCode() != "invalid_token" {
		t.Fatalf("expired token: %d %s", expired.Status, expired.Raw)
	}
	unknown := a.API("POST", "/users/activate", map[string]any{"token": base64.RawURLEncoding.EncodeToString(make([]byte, 32))})
	if unknown.Status != 400 || unknown.ErrorCode() != "invalid_token" {
		t.Fatalf("unknown token: %d %s", unknown.Status, unknown.Raw)
	}
	if expired.Raw != unknown.Raw {
		t.Fatalf("expired and unknown tokens answer differently:\n%s\n%s", expired.Raw, unknown.Raw)
	}
	if r := a.API("GET", "/users/"+id, nil); r.Status != 200 || r.Body["status"] != "pending" {
		t.Fatalf("after invalid tokens: %d %s", r.Status, r.Raw)
	}
	if evs := a.Stream(outbox.PublicStream).OfType(users.EventAccountActivated.Name()); len(evs) != 0 {
		t.Fatalf("%d account_activated events, want none", len(evs))
	}
}

// The facade's error contract, as another module would match it.
func TestFacadeErrors(t *testing.T) {
	a := newApp(t)
	ctx := context.Background()
	u, err := a.users.SignUp(ctx, "ken", "ken@example.com", "unix-1969!")
	if err != nil || u.Status != users.StatusPending || !u.ActivatedAt.IsZero() {
		t.Fatalf("SignUp: %+v %v", u, err)
	}
	if _, err := a.users.SignUp(ctx, "ken again", "KEN@EXAMPLE.COM", "unix-1969!"); !errors.Is(err, users.ErrEmailTaken) || errs.KindOf(err) != errs.Conflict {
		t.Fatalf("SignUp with a taken email: %v", err)
	}
	// Usernames need not be unique.
	if _, err := a.users.SignUp(ctx, "ken", "ken.t@example.com", "unix-1969!"); err != nil {
		t.Fatalf("SignUp with a taken username: %v", err)
	}
	if _, err := a.users.SignUp(ctx, "", "x@example.com", "short"); errs.KindOf(err) != errs.Invalid {
		t.Fatalf("SignUp with bad input: %v", err)
	}
	if _, err := a.users.User(ctx, "0193a0b2-7c4e-7000-8000-000000000000"); !errors.Is(err, users.ErrNotFound) {
		t.Fatalf("User of an unknown id: %v", err)
	}
	if _, err := a.users.User(ctx, "nope"); errs.KindOf(err) != errs.Invalid {
		t.Fatalf("User of a malformed id: %v", err)
	}
	if _, err := a.users.Activate(ctx, "no-such-token"); !errors.Is(err, users.ErrInvalidToken) {
		t.Fatalf("Activate with an unknown token: %v", err)
	}
	if _, err := a.users.Activate(ctx, " "); errs.KindOf(err) != errs.Invalid || errors.Is(err, users.ErrInvalidToken) {
		t.Fatalf("Activate with a blank token: %v", err)
	}
}

// Every bad request answers its documented status, code and field, and
// writes nothing: no account, no token, no event.
func TestBadInputWritesNothing(t *testing.T) {
	a := newApp(t)
	body := func(username, email, password string) string {
		b, _ := json.Marshal(map[string]string{"username": username, "email": email, "password": password})
		return string(b)
	}
	const pw = "long-enough"
	cases := []struct {
		name, method, path string
		body               any
		status             int
		code, field        string
	}{
		{"blank username", "POST", "/users", body("  \t", "a@example.com", pw), 400, "validation_failed", "username"},
		{"long username", "POST", "/users", body(strings.Repeat("é", 101), "a@example.com", pw), 400, "validation_failed", "username"},
		{"control character in username", "POST", "/users", body("a\x00b", "a@example.com", pw), 400, "validation_failed", "username"},
		{"missing username", "POST", "/users", `{"email":"a@example.com","password":"long-enough"}`, 400, "validation_failed", "username"},
		{"blank email", "POST", "/users", body("ada", " ", pw), 400, "validation_failed", "email"},
		{"malformed email", "POST", "/users", body("ada", "ada.example.com", pw), 400, "validation_failed", "email"},
		{"two at signs", "POST", "/users", body("ada", "ada@@example.com", pw), 400, "validation_failed", "email"},
		{"display name", "POST", "/users", body("ada", "Name <a@b.c>", pw), 400, "validation_failed", "email"},
		{"angle brackets", "POST", "/users", body("ada", "<a@b.c>", pw), 400, "validation_failed", "email"},
		{"comment", "POST", "/users", body("ada", "a@b.c (Ada)", pw), 400, "validation_failed", "email"},
		{"two addresses", "POST", "/users", body("ada", "a@b.c, d@e.f", pw), 400, "validation_failed", "email"},
		{"long email", "POST", "/users", body("ada", strings.Repeat("a", 64)+"@"+strings.Repeat("b", 186)+".com", pw), 400, "validation_failed", "email"},
		{"missing email", "POST", "/users", `{"username":"ada","password":"long-enough"}`, 400, "validation_failed", "email"},
		{"short password", "POST", "/users", body("ada", "a@example.com", "1234567"), 400, "validation_failed", "password"},
		{"short password in bytes only", "POST", "/users", body("ada", "a@example.com", "ééé"), 400, "validation_failed", "password"},
		{"password over 72 bytes", "POST", "/users", body("ada", "a@example.com", strings.Repeat("é", 37)), 400, "validation_failed", "password"},
		{"missing password", "POST", "/users", `{"username":"ada","email":"a@example.com"}`, 400, "validation_failed", "password"},
		{"unknown field", "POST", "/users", `{"username":"ada","email":"a@example.com","password":"long-enough","admin":true}`, 400, "validation_failed", "admin"},
		{"wrong type", "POST", "/users", `{"username":7,"email":"a@example.com","password":"long-enough"}`, 400, "validation_failed", "username"},
		{"malformed json", "POST", "/users", `{"username":"ada",`, 400, "validation_failed", "body"},
		{"two objects", "POST", "/users", body("ada", "a@example.com", pw) + "{}", 400, "validation_failed", "body"},
		{"empty body", "POST", "/users", "", 400, "validation_failed", "body"},
		{"malformed id", "GET", "/users/not-a-uuid", nil, 400, "validation_failed", "id"},
		{"nil id", "GET", "/users/00000000-0000-0000-0000-000000000000", nil, 400, "validation_failed", "id"},
		{"unknown id", "GET", "/users/0193a0b2-7c4e-7000-8000-000000000000", nil, 404, "not_found", ""},
		{"blank token", "POST", "/users/activate", `{"token":"  "}`, 400, "validation_failed", "token"},
		{"missing token", "POST", "/users/activate", `{}`, 400, "validation_failed", "token"},
		{"unknown token", "POST", "/users/activate", `{"token":"abc"}`, 400, "invalid_token", ""},
		{"unknown field on activate", "POST", "/users/activate", `{"token":"abc","user":"x"}`, 400, "validation_failed", "user"},
	}
	for _, c := range cases {
		r := a.API(c.method, c.path, c.body)
		if r.Status != c.status || r.ErrorCode() != c.code {
			t.Errorf("%s: %d %s, want %d %s", c.name, r.Status, r.Raw, c.status, c.code)
			continue
		}
		if c.field != "" && r.Field(c.field) == nil {
			t.Errorf("%s: no message for field %q in %s", c.name, c.field, r.Raw)
		}
	}
	// Blank fields are all reported at once.
	r := a.API("POST", "/users", body("", "", ""))
	if r.Status != 400 || r.Field("username") == nil || r.Field("email") == nil || r.Field("password") == nil {
		t.Errorf("all fields blank: %d %s", r.Status, r.Raw)
	}
	for _, path := range []string{"/users", "/users/activate"} {
		if r := a.API("POST", path, body("ada", "a@example.com", pw), "Content-Type", "text/plain"); r.Status != 415 || r.ErrorCode() != "unsupported_media_type" {
			t.Errorf("text/plain to %s: %d %s", path, r.Status, r.Raw)
		}
		if r := a.API("POST", path, nil); r.Status != 415 {
			t.Errorf("no body to %s: %d %s", path, r.Status, r.Raw)
		}
		big := body("ada", "a@example.com", strings.Repeat("p", 1<<20))
		if r := a.API("POST", path, big); r.Status != 413 || r.ErrorCode() != "payload_too_large" {
			t.Errorf("body over 1 MiB to %s: %d %.200s", path, r.Status, r.Raw)
		}
	}
	if n := a.Count(`SELECT (SELECT count(*) FROM users.accounts) + (SELECT count(*) FROM users.activation_tokens)`); n != 0 {
		t.Fatalf("bad input wrote %d rows", n)
	}
	if pub, internal := a.Stream(outbox.PublicStream), a.Stream(outbox.InternalStream); len(pub)+len(internal) != 0 {
		t.Fatalf("bad input published %d public and %d internal events", len(pub), len(internal))
	}
}
