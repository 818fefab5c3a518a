package customers

import "github.com/cairn-dev/cairn/errs"

// The customers module's error contract; match with errors.Is. Input
// problems are errs.Validation errors naming the field.
var (
	ErrNotFound = errs.New(errs.NotFound, "customer_not_found", "no such customer")
)
