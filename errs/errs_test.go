package errs

import (
	"errors"
	"fmt"
	"testing"
)

func TestSentinelMatchesWhatDerivesFromIt(t *testing.T) {
	errTaken := New(Conflict, "email_taken", "email is already registered")
	wrapped := fmt.Errorf("sign up: %w", errTaken.Wrap(errors.New("23505")))
	if !errors.Is(wrapped, errTaken) {
		t.Fatal("errors.Is did not match a wrapped error derived from the sentinel")
	}
	if !errors.Is(wrapped, errors.Unwrap(wrapped).(*Error).Err) {
		t.Fatal("the cause is not reachable through the chain")
	}
	if !errors.Is(errTaken.WithMessage("more precise").WithFields(map[string]string{"email": "taken"}), errTaken) {
		t.Fatal("a twice-derived error does not match its sentinel")
	}
	if KindOf(wrapped) != Conflict {
		t.Fatalf("KindOf = %v, want Conflict", KindOf(wrapped))
	}
	if KindOf(errors.New("plain")) != Internal {
		t.Fatal("an unclassified error must be Internal")
	}
	if !errors.Is(Validation(map[string]string{"a": "b"}), ErrValidation) {
		t.Fatal("Validation does not match ErrValidation")
	}
}

// Two sentinels with the same kind and code are different errors: one
// module's "not_found" must not satisfy a check for another's.
func TestSentinelsWithOneCodeAreDistinct(t *testing.T) {
	noAccount := New(NotFound, "not_found", "no such account")
	mailboxOff := New(NotFound, "not_found", "the mailbox is off")
	if errors.Is(mailboxOff, noAccount) || errors.Is(noAccount, mailboxOff) {
		t.Fatal("two sentinels that share a code match each other")
	}
	if errors.Is(fmt.Errorf("x: %w", mailboxOff.Wrap(errors.New("cause"))), noAccount) {
		t.Fatal("an error derived from one sentinel matches another with the same code")
	}
	literal := &Error{Kind: NotFound, Code: "not_found", Message: "built by hand"}
	if errors.Is(literal, noAccount) {
		t.Fatal("an Error built as a literal matches a sentinel by its code")
	}
	// A narrower sentinel declared from a broader one matches both; the
	// broader one does not match the narrower.
	notYetOpened := noAccount.WithMessage("the account did not exist at that time")
	if !errors.Is(notYetOpened, noAccount) || errors.Is(noAccount, notYetOpened) {
		t.Fatal("derivation must match towards the parent only")
	}
	if errors.Is(notYetOpened, mailboxOff) {
		t.Fatal("a derived sentinel matches an unrelated one")
	}
}
