package orders

import "github.com/cairn-dev/cairn/errs"

// The orders module's error contract; match with errors.Is. Malformed
// input is an errs.Validation error (400) naming the field.
var (
	ErrNotFound         = errs.New(errs.NotFound, "order_not_found", "no such order")
	ErrCustomerNotFound = errs.New(errs.NotFound, "customer_not_found", "no such customer")
	ErrUnknownSKU       = errs.New(errs.Unprocessable, "unknown_sku", "an order line names a SKU the catalogue does not have")
	ErrMixedCurrencies  = errs.New(errs.Unprocessable, "mixed_currencies", "the order's lines are priced in more than one currency")
	ErrCurrencyMismatch = errs.New(errs.Unprocessable, "currency_mismatch", "the order is priced in another currency than the customer's credit")
	ErrTotalTooLarge    = errs.New(errs.Unprocessable, "total_too_large", "the order's total is above 10^15 minor units")
	ErrOrderFinal       = errs.New(errs.Conflict, "order_final", "the order is rejected or cancelled already")
)
