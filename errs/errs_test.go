package errs

import (
	"errors"
	"fmt"
	"testing"
)

func TestSentinelMatchesThroughWrapping(t *testing.T) {
	errTaken := New(Conflict, "email_taken", "email is already registered")
	wrapped := fmt.Errorf("sign up: %w", &Error{Kind: Conflict, Code: "email_taken", Message: "x", Err: errors.New("23505")})
	if !errors.Is(wrapped, errTaken) {
		t.Fatal("errors.Is did not match a wrapped error with the same kind and code")
	}
	if errors.Is(wrapped, New(Conflict, "other", "")) {
		t.Fatal("errors.Is matched a different code")
	}
	if KindOf(wrapped) != Conflict {
		t.Fatalf("KindOf = %v, want Conflict", KindOf(wrapped))
	}
	if KindOf(errors.New("plain")) != Internal {
		t.Fatal("an unclassified error must be Internal")
	}
}
