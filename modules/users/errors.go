package users

import "github.com/cairn-dev/cairn/errs"

// The users module's error contract; match with errors.Is. Input problems
// are errs.Validation errors naming the field.
var (
	ErrEmailTaken = errs.New(errs.Conflict, "email_taken", "an account with this email address already exists")
	ErrNotFound   = errs.New(errs.NotFound, "not_found", "no such user")
	// ErrInvalidToken does not say whether the token is unknown or expired.
	ErrInvalidToken = errs.New(errs.Invalid, "invalid_token",
		"the activation token is not valid or has expired; ask for a new activation email")
	// ErrTooManyRequests: an address asked for activation emails too
	// often; its cause (a *RateLimited) says how long to wait.
	ErrTooManyRequests = errs.New(errs.TooManyRequests, "too_many_requests", "too many activation emails asked for this address")
)
