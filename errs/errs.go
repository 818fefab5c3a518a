// Package errs is the small leaf vocabulary of error kinds that every layer
// shares, so that one HTTP error handler can map any failure to a status
// without knowing which module produced it.
package errs

import (
	"errors"
	"fmt"
	"maps"
)

// Kind says what went wrong from the caller's point of view.
type Kind int

// The kinds. Internal is the zero value on purpose: an error nobody
// classified is treated as our fault, logged, and hidden from the client.
const (
	Internal Kind = iota
	Invalid
	NotFound
	Conflict
	Unauthorized
	Forbidden
	Unprocessable
	Unavailable
	// TooManyRequests: the caller must wait before asking again (429).
	TooManyRequests
)

// Error is a classified error with a stable machine-readable code
// ("email_taken") and a message safe to show to a client.
//
// A sentinel (made by New) matches, with errors.Is, itself and the errors
// derived from it (Wrap, WithMessage, WithFields), and nothing else: two
// modules' sentinels that share a code ("not_found") stay distinct, so a
// caller can tell "no such account" from "the mailbox is off".
type Error struct {
	Kind    Kind
	Code    string
	Message string
	// Fields maps an input field to what is wrong with it (validation).
	Fields map[string]string
	// Err is the cause; it is logged, never shown to clients.
	Err error

	// parent is the error this one was derived from; nil for a sentinel
	// or an Error built as a literal.
	parent *Error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, sentinel) match an error derived from sentinel,
// however many derivations away (errors.Is itself handles err == sentinel).
// Kind and code alone never match: they are what the client sees, not who
// raised the error.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	for p := e.parent; p != nil; p = p.parent {
		if p == t {
			return true
		}
	}
	return false
}

// New declares a sentinel of the given kind; declare it once, in a package
// variable, and match it with errors.Is.
func New(kind Kind, code, message string) *Error {
	return &Error{Kind: kind, Code: code, Message: message}
}

// derive copies e as a new error that matches e (and what e matches).
func (e *Error) derive() *Error {
	d := *e
	d.parent = e
	return &d
}

// Wrap returns e with cause attached: it still matches e, and the cause is
// logged but never shown to clients.
func (e *Error) Wrap(cause error) *Error {
	d := e.derive()
	d.Err = cause
	return d
}

// WithMessage returns e with another client message; it still matches e.
// Use it to say more precisely what went wrong, or to declare a narrower
// sentinel that callers of the broader one keep matching.
func (e *Error) WithMessage(message string) *Error {
	d := e.derive()
	d.Message = message
	return d
}

// WithFields returns e with per-field messages; it still matches e.
func (e *Error) WithFields(fields map[string]string) *Error {
	d := e.derive()
	d.Fields = maps.Clone(fields)
	return d
}

// ErrValidation is the sentinel of every Validation error.
var ErrValidation = New(Invalid, "validation_failed", "the request is not valid")

// Validation returns an Invalid error with per-field messages; it matches
// ErrValidation.
func Validation(fields map[string]string) *Error {
	return ErrValidation.WithFields(fields)
}

// KindOf reports the kind of err, Internal when it carries none.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}
