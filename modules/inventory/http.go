package inventory

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/errs"
	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/web"
)

func (m *Module) routes(g *echo.Group) {
	web.Handle(g, http.MethodPost, "/inventory/items", web.Op{
		Summary: "Add an item to the catalogue, with its price and stock on hand", Request: addRequest{}, Response: itemResponse{},
		Status: http.StatusCreated, Errors: []int{http.StatusConflict},
	}, m.handleItemAdd)
	web.Handle(g, http.MethodGet, "/inventory/items/:sku", web.Op{
		Summary: "An item: its price, stock on hand, reserved and available", Response: itemResponse{},
	}, m.handleItemGet)
	web.Handle(g, http.MethodPost, "/inventory/items/:sku/restock", web.Op{
		Summary: "Add units on hand", Request: restockRequest{}, Response: itemResponse{},
	}, m.handleItemRestock)
	web.Handle(g, http.MethodPost, "/inventory/items/:sku/price", web.Op{
		Summary: "Change an item's unit price (orders placed later pay it)", Request: priceRequest{}, Response: itemResponse{},
	}, m.handleItemPrice)
}

type addRequest struct {
	SKU       *string        `json:"sku"`
	Name      *string        `json:"name"`
	UnitPrice *modules.Money `json:"unit_price"`
	OnHand    *int64         `json:"on_hand"`
}

type itemResponse struct {
	SKU       string        `json:"sku"`
	Name      string        `json:"name"`
	UnitPrice modules.Money `json:"unit_price"`
	OnHand    int64         `json:"on_hand"`
	Reserved  int64         `json:"reserved"`
	Available int64         `json:"available"`
}

func toResponse(it Item) itemResponse {
	return itemResponse{SKU: it.SKU, Name: it.Name, UnitPrice: it.UnitPrice, OnHand: it.OnHand, Reserved: it.Reserved, Available: it.Available()}
}

func (m *Module) handleItemAdd(c echo.Context) error {
	var req addRequest
	if err := web.BindJSON(c, &req); err != nil {
		return err
	}
	missing := map[string]string{}
	if req.SKU == nil {
		missing["sku"] = "is required"
	}
	if req.Name == nil {
		missing["name"] = "is required"
	}
	if req.UnitPrice == nil {
		missing["unit_price"] = "is required: {\"amount\",\"currency\"}"
	}
	if req.OnHand == nil {
		missing["on_hand"] = "is required"
	}
	if len(missing) > 0 {
		return errs.Validation(missing)
	}
	it, err := m.Add(c.Request().Context(), *req.SKU, *req.Name, *req.UnitPrice, *req.OnHand)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, toResponse(it))
}

func (m *Module) handleItemGet(c echo.Context) error {
	it, err := m.Item(c.Request().Context(), c.Param("sku"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toResponse(it))
}

type restockRequest struct {
	Quantity *int64 `json:"quantity"`
}

func (m *Module) handleItemRestock(c echo.Context) error {
	var req restockRequest
	if err := web.BindJSON(c, &req); err != nil {
		return err
	}
	if req.Quantity == nil {
		return errs.Validation(map[string]string{"quantity": "is required"})
	}
	it, err := m.Restock(c.Request().Context(), c.Param("sku"), *req.Quantity)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toResponse(it))
}

type priceRequest struct {
	UnitPrice *modules.Money `json:"unit_price"`
}

func (m *Module) handleItemPrice(c echo.Context) error {
	var req priceRequest
	if err := web.BindJSON(c, &req); err != nil {
		return err
	}
	if req.UnitPrice == nil {
		return errs.Validation(map[string]string{"unit_price": "is required: {\"amount\",\"currency\"}"})
	}
	it, err := m.ChangePrice(c.Request().Context(), c.Param("sku"), *req.UnitPrice)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toResponse(it))
}
