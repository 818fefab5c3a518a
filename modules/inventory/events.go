package inventory

import (
	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/outbox"
)

// The catalogue: public events keyed by SKU, which other modules (orders)
// keep their own copy of. Version orders an item's catalogue events.
var (
	EventItemAdded = outbox.Declare[ItemAdded](outbox.EventSpec{
		Type: "inventory.item_added.v1", Visibility: outbox.Public,
		Description: "An item joined the catalogue with its unit price and stock.",
	})
	EventPriceChanged = outbox.Declare[PriceChanged](outbox.EventSpec{
		Type: "inventory.price_changed.v1", Visibility: outbox.Public,
		Description: "An item's unit price changed.",
	})
	EventRestocked = outbox.Declare[Restocked](outbox.EventSpec{
		Type: "inventory.restocked.v1", Visibility: outbox.Public,
		Description: "Units of an item arrived at the warehouse.",
	})
	// EventStockLevelChanged is the item's side of a reservation's move:
	// the replies below are keyed by the reservation, so without it an
	// item's own trail (the lake's GET /lake/subjects/<sku>/events) would
	// not show why its reserved and on-hand units changed.
	EventStockLevelChanged = outbox.Declare[StockLevelChanged](outbox.EventSpec{
		Type: "inventory.stock_level_changed.v1", Visibility: outbox.Public,
		Description: "A reservation changed an item's reserved or on-hand units; one event per item it moved.",
	})
)

// The commands inventory carries out. A command is an internal event that
// the module receiving it declares, as part of its contract; the sender
// (the orders module's fulfilment saga) imports this package to send it,
// and inventory never knows who sent it. Key = reservation id.
var (
	CommandReserveStock = outbox.Declare[ReserveStock](outbox.EventSpec{
		Type: "inventory.reserve_stock.v1", Visibility: outbox.Internal,
		Description: "Command: reserve these units under this reservation id, all or none.",
	})
	CommandReleaseStock = outbox.Declare[ReservationRef](outbox.EventSpec{
		Type: "inventory.release_stock.v1", Visibility: outbox.Internal,
		Description: "Command: give back whatever the reservation holds.",
	})
	CommandCommitStock = outbox.Declare[ReservationRef](outbox.EventSpec{
		Type: "inventory.commit_stock.v1", Visibility: outbox.Internal,
		Description: "Command: the reserved units leave the warehouse (the order was approved).",
	})
)

// The replies, public, keyed by reservation id.
var (
	EventStockReserved = outbox.Declare[StockLines](outbox.EventSpec{
		Type: "inventory.stock_reserved.v1", Visibility: outbox.Public,
		Description: "Every unit a reservation asked for was reserved.",
	})
	EventStockUnavailable = outbox.Declare[StockUnavailable](outbox.EventSpec{
		Type: "inventory.stock_unavailable.v1", Visibility: outbox.Public,
		Description: "A reservation could not be met; nothing was reserved.",
	})
	EventStockReleased = outbox.Declare[StockLines](outbox.EventSpec{
		Type: "inventory.stock_released.v1", Visibility: outbox.Public,
		Description: "What a reservation held was given back (its lines; none if it held nothing).",
	})
	EventStockCommitted = outbox.Declare[StockLines](outbox.EventSpec{
		Type: "inventory.stock_committed.v1", Visibility: outbox.Public,
		Description: "A reservation's units left the warehouse.",
	})
)

// ItemAdded is the data of inventory.item_added.v1.
type ItemAdded struct {
	SKU       string        `json:"sku"`
	Name      string        `json:"name"`
	UnitPrice modules.Money `json:"unit_price"`
	OnHand    int64         `json:"on_hand"`
	Version   int64         `json:"version"`
}

// PriceChanged is the data of inventory.price_changed.v1.
type PriceChanged struct {
	SKU       string        `json:"sku"`
	UnitPrice modules.Money `json:"unit_price"`
	Version   int64         `json:"version"`
}

// Restocked is the data of inventory.restocked.v1: on hand after it.
type Restocked struct {
	SKU      string `json:"sku"`
	Quantity int64  `json:"quantity"`
	OnHand   int64  `json:"on_hand"`
}

// StockLevelChanged is the data of inventory.stock_level_changed.v1: what
// a reservation's move (reserved, released, committed) changed of one item,
// and its units after it.
type StockLevelChanged struct {
	SKU            string `json:"sku"`
	ReservationID  string `json:"reservation_id"`
	Move           string `json:"move"`
	OnHandChange   int64  `json:"on_hand_change"`
	ReservedChange int64  `json:"reserved_change"`
	OnHand         int64  `json:"on_hand"`
	Reserved       int64  `json:"reserved"`
}

// Line is a quantity of one SKU.
type Line struct {
	SKU      string `json:"sku"`
	Quantity int64  `json:"quantity"`
}

// ReserveStock is the data of inventory.reserve_stock.v1.
type ReserveStock struct {
	ReservationID string `json:"reservation_id"`
	Lines         []Line `json:"lines"`
}

// ReservationRef is the data of the commands about one reservation.
type ReservationRef struct {
	ReservationID string `json:"reservation_id"`
}

// StockLines is the data of stock_reserved, stock_released and
// stock_committed.
type StockLines struct {
	ReservationID string `json:"reservation_id"`
	Lines         []Line `json:"lines"`
}

// StockUnavailable is the data of inventory.stock_unavailable.v1: the
// lines that could not be met, with what was available of each.
type StockUnavailable struct {
	ReservationID string     `json:"reservation_id"`
	Short         []Shortage `json:"short"`
}

// Shortage is one line a reservation could not get.
type Shortage struct {
	SKU       string `json:"sku"`
	Quantity  int64  `json:"quantity"`
	Available int64  `json:"available"`
}
