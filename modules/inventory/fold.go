package inventory

import (
	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/outbox/lake"
)

// itemState is an item as the lake folds it from the module's events
// keyed by its SKU (GET /api/v1/lake/subjects/<sku>/state): the same as
// GET /api/v1/inventory/items/<sku>, plus the catalogue version.
type itemState struct {
	SKU       string        `json:"sku"`
	Name      string        `json:"name"`
	UnitPrice modules.Money `json:"unit_price"`
	OnHand    int64         `json:"on_hand"`
	Reserved  int64         `json:"reserved"`
	Available int64         `json:"available"`
	Version   int64         `json:"version"`
}

// registerFold tells the lake how an item's state follows from its events.
// Like the ledger's, it sums the changes rather than copying the units the
// events carry, so the fold checks the module's arithmetic.
func registerFold(f *lake.Folds) error {
	return lake.Fold(f, "inventory.item",
		lake.On(EventItemAdded, func(s *itemState, _ lake.Event, d ItemAdded) {
			*s = itemState{SKU: d.SKU, Name: d.Name, UnitPrice: d.UnitPrice, OnHand: d.OnHand, Available: d.OnHand, Version: d.Version}
		}),
		lake.On(EventPriceChanged, func(s *itemState, _ lake.Event, d PriceChanged) {
			s.UnitPrice, s.Version = d.UnitPrice, d.Version
		}),
		lake.On(EventRestocked, func(s *itemState, _ lake.Event, d Restocked) {
			s.OnHand += d.Quantity
			s.Available = s.OnHand - s.Reserved
		}),
		lake.On(EventStockLevelChanged, func(s *itemState, _ lake.Event, d StockLevelChanged) {
			s.OnHand, s.Reserved = s.OnHand+d.OnHandChange, s.Reserved+d.ReservedChange
			s.Available = s.OnHand - s.Reserved
		}),
	)
}
