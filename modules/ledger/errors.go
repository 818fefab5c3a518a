package ledger

import "github.com/cairn-dev/cairn/errs"

// The ledger's error contract; match with errors.Is.
var (
	ErrNotFound             = errs.New(errs.NotFound, "not_found", "no such account")
	ErrInsufficientFunds    = errs.New(errs.Unprocessable, "insufficient_funds", "the balance is lower than the amount")
	ErrBalanceLimit         = errs.New(errs.Unprocessable, "balance_limit_exceeded", "the balance would exceed the largest amount an account can hold")
	ErrIdempotencyKeyReused = errs.New(errs.Unprocessable, "idempotency_key_reused", "this Idempotency-Key was used with a different request")
	// ErrNotYetOpened narrows ErrNotFound: errors.Is matches it with both.
	ErrNotYetOpened = ErrNotFound.WithMessage("the account did not exist at that time")
)
