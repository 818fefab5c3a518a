package reporting

import "strings"

// The public events the reports are built from: named by their contract,
// never imported (this module depends on no other) and never read from
// another module's tables. Keys: order id (orders), customer id
// (customers), SKU or reservation id (inventory), payment id (payments),
// account id (ledger). The orders module's fulfilment saga uses the order
// id as the reservation id and the payment id, which is how stock and
// payment events find their order.
const (
	orderPlaced    = "orders.order_placed.v1"
	orderApproved  = "orders.order_approved.v1"
	orderRejected  = "orders.order_rejected.v1"
	orderCancelled = "orders.order_cancelled.v1"

	customerCreated     = "customers.customer_created.v1"
	creditReserved      = "customers.credit_reserved.v1"
	creditLimitExceeded = "customers.credit_limit_exceeded.v1"
	creditReleased      = "customers.credit_released.v1"

	itemAdded        = "inventory.item_added.v1"
	priceChanged     = "inventory.price_changed.v1"
	restocked        = "inventory.restocked.v1"
	stockReserved    = "inventory.stock_reserved.v1"
	stockUnavailable = "inventory.stock_unavailable.v1"
	stockCommitted   = "inventory.stock_committed.v1"
	stockReleased    = "inventory.stock_released.v1"

	paymentAuthorized = "payments.payment_authorized.v1"
	paymentDeclined   = "payments.payment_declined.v1"
	paymentVoided     = "payments.payment_voided.v1"

	accountOpened = "ledger.account_opened.v1"
	deposited     = "ledger.deposited.v1"
	withdrawn     = "ledger.withdrawn.v1"
)

// types replaces @name in the projections' SQL with the quoted event type:
// the SQL reads as the contract names events, and the type strings live
// in one place, above.
var types = strings.NewReplacer(
	"@order_placed", quote(orderPlaced), "@order_approved", quote(orderApproved),
	"@order_rejected", quote(orderRejected), "@order_cancelled", quote(orderCancelled),
	"@customer_created", quote(customerCreated), "@credit_reserved", quote(creditReserved),
	"@credit_limit_exceeded", quote(creditLimitExceeded), "@credit_released", quote(creditReleased),
	"@item_added", quote(itemAdded), "@price_changed", quote(priceChanged), "@restocked", quote(restocked),
	"@stock_reserved", quote(stockReserved), "@stock_unavailable", quote(stockUnavailable),
	"@stock_committed", quote(stockCommitted), "@stock_released", quote(stockReleased),
	"@payment_authorized", quote(paymentAuthorized), "@payment_declined", quote(paymentDeclined),
	"@payment_voided", quote(paymentVoided),
	"@account_opened", quote(accountOpened), "@deposited", quote(deposited), "@withdrawn", quote(withdrawn),
)

func quote(s string) string { return "'" + s + "'" }

// sqls applies types to each statement.
func sqls(qs ...string) []string {
	out := make([]string, len(qs))
	for i, q := range qs {
		out[i] = types.Replace(q)
	}
	return out
}
