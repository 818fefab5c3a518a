package inventory

import "github.com/cairn-dev/cairn/errs"

// The inventory module's error contract; match with errors.Is. Input
// problems are errs.Validation errors naming the field.
var (
	ErrNotFound = errs.New(errs.NotFound, "item_not_found", "no item with this SKU")
	ErrSKUTaken = errs.New(errs.Conflict, "sku_taken", "an item with this SKU exists already")
)
