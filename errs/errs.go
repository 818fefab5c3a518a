// Package errs is the small leaf vocabulary of error kinds that every layer
// shares, so that one HTTP error handler can map any failure to a status
// without knowing which module produced it.
package errs

import (
	"errors"
	"fmt"
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
)

// Error is a classified error with a stable machine-readable code
// ("email_taken") and a message safe to show to a client.
type Error struct {
	Kind    Kind
	Code    string
	Message string
	// Fields maps an input field to what is wrong with it (validation).
	Fields map[string]string
	// Err is the cause; it is logged, never shown to clients.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, sentinel) match any *Error with the same kind and
// code, so modules can declare sentinels and still attach causes or fields.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Kind == e.Kind && t.Code == e.Code
}

// New returns an Error of the given kind.
func New(kind Kind, code, message string) *Error {
	return &Error{Kind: kind, Code: code, Message: message}
}

// Validation returns an Invalid error with per-field messages.
func Validation(fields map[string]string) *Error {
	return &Error{Kind: Invalid, Code: "validation_failed", Message: "the request is not valid", Fields: fields}
}

// KindOf reports the kind of err, Internal when it carries none.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}
