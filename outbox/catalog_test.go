package outbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/outbox"
)

type orderPlaced struct {
	OrderID  string    `json:"order_id"`
	Customer customer  `json:"customer"`
	Total    int64     `json:"total"`
	Lines    []line    `json:"lines"`
	At       time.Time `json:"at"`
}

type customer struct {
	Email string `json:"email" cairn:"personal"`
	Token string `json:"token" cairn:"secret,personal"`
}

type line struct {
	SKU string `json:"sku"`
	Qty int    `json:"qty"`
}

var (
	orderPlacedEvent = outbox.Declare[orderPlaced](outbox.EventSpec{
		Type: "kit.order_placed.v1", Visibility: outbox.Public, Description: "An order was placed.",
	})
	secretMade = outbox.Declare[map[string]string](outbox.EventSpec{
		Type: "kit.secret_made.v1", Visibility: outbox.Internal, Description: "A secret was made.",
	})
)

func noop[T any](context.Context, pgx.Tx, outbox.Received[T]) error { return nil }

func TestCatalogKnowsDeclarations(t *testing.T) {
	d, ok := outbox.Lookup("kit.order_placed.v1")
	if !ok || d.Visibility != outbox.Public || d.Description != "An order was placed." || d.Payload.String() != "outbox_test.orderPlaced" {
		t.Fatalf("Lookup: %+v %v", d, ok)
	}
	if d.Subject() != "events.kit.order_placed.v1" || secretMade.Declared().Subject() != "internal.kit.secret_made.v1" {
		t.Errorf("subjects %s, %s", d.Subject(), secretMade.Declared().Subject())
	}
	var got []string
	for _, f := range d.Fields {
		got = append(got, fmt.Sprintf("%s:%v:%v", f.Path, f.Secret, f.Personal))
	}
	want := "order_id:false:false customer:false:false customer.email:false:true customer.token:true:true total:false:false lines:false:false at:false:false"
	if strings.Join(got, " ") != want {
		t.Errorf("fields\n got %s\nwant %s", strings.Join(got, " "), want)
	}
	cat := outbox.Catalog()
	for i := 1; i < len(cat); i++ {
		if cat[i-1].Type >= cat[i].Type {
			t.Fatalf("Catalog is not sorted: %s before %s", cat[i-1].Type, cat[i].Type)
		}
	}
	if _, ok := outbox.Lookup("kit.never_declared.v1"); ok {
		t.Error("Lookup found an undeclared type")
	}
}

// Every mistake in a declaration stops the program where it is declared.
func TestDeclareRefusesMistakes(t *testing.T) {
	cases := map[string]func(){
		"bad name":       func() { outbox.Declare[line](outbox.EventSpec{Type: "Kit.Bad", Description: "x"}) },
		"no description": func() { outbox.Declare[line](outbox.EventSpec{Type: "kit.undescribed.v1"}) },
		"two lines":      func() { outbox.Declare[line](outbox.EventSpec{Type: "kit.wordy.v1", Description: "a\nb"}) },
		"visibility":     func() { outbox.Declare[line](outbox.EventSpec{Type: "kit.hidden.v1", Visibility: 7, Description: "x"}) },
		"twice":          func() { outbox.Declare[line](outbox.EventSpec{Type: "kit.order_placed.v1", Description: "again"}) },
		"any payload":    func() { outbox.Declare[any](outbox.EventSpec{Type: "kit.anything.v1", Description: "x"}) },
		"unknown tag": func() {
			outbox.Declare[struct {
				X string `json:"x" cairn:"secrte"`
			}](outbox.EventSpec{Type: "kit.tagged.v1", Description: "x"})
		},
	}
	for name, declare := range cases {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: Declare did not panic", name)
				}
			}()
			declare()
		}()
	}
}

// Append (and Queue) take only declared types with their declared payload.
func TestAppendRefusesUndeclaredOrMistyped(t *testing.T) {
	ctx := context.Background()
	ok := orderPlacedEvent.New("o-1", orderPlaced{OrderID: "o-1"})
	if _, err := outbox.Queue(ctx, &pgx.Batch{}, ok); err != nil {
		t.Fatalf("a declared event: %v", err)
	}
	cases := map[string]struct {
		ev   outbox.Event
		want string
	}{
		"undeclared":        {outbox.Event{Type: "kit.never_declared.v1", Key: "k", Data: line{}}, "not declared"},
		"other Go type":     {outbox.Event{Type: "kit.order_placed.v1", Key: "k", Data: line{}}, "data is outbox_test.line, but the type is declared with payload outbox_test.orderPlaced"},
		"pointer":           {outbox.Event{Type: "kit.order_placed.v1", Key: "k", Data: &orderPlaced{}}, "data is *outbox_test.orderPlaced"},
		"raw JSON":          {outbox.Event{Type: "kit.order_placed.v1", Key: "k", Data: json.RawMessage(`{}`)}, "data is json.RawMessage"},
		"no data":           {outbox.Event{Type: "kit.order_placed.v1", Key: "k"}, "data is nil"},
		"no key":            {outbox.Event{Type: "kit.order_placed.v1", Data: orderPlaced{}}, "has no key"},
		"malformed in list": {outbox.Event{Type: "not a type", Key: "k", Data: line{}}, "not declared"},
	}
	for name, c := range cases {
		b := &pgx.Batch{}
		_, err := outbox.Queue(ctx, b, ok, c.ev)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, c.want)
		}
		if b.Len() != 0 {
			t.Errorf("%s: %d statements queued for a refused event", name, b.Len())
		}
	}
}

// A subscription that does not match the catalog stops start-up, and the
// message names the consumer, the type and both sides of the mismatch.
func TestHandleRefusesWhatTheCatalogContradicts(t *testing.T) {
	type wrongField struct {
		OrderID int `json:"order_id"`
	}
	type absentField struct {
		Coupon string `json:"coupon"`
	}
	type nested struct {
		Customer struct {
			Email []string `json:"email"`
		} `json:"customer"`
	}
	cases := map[string]struct {
		register func(*outbox.Subscriptions) error
		want     []string
	}{
		"unknown type": {func(s *outbox.Subscriptions) error {
			return outbox.Handle(s, "kit_x", outbox.Named[orderPlaced]("kit.order_shipped.v1", outbox.Public), noop[orderPlaced])
		}, []string{"consumer kit_x", "kit.order_shipped.v1", "no module declares"}},
		"wrong visibility": {func(s *outbox.Subscriptions) error {
			return outbox.Handle(s, "kit_x", outbox.Named[map[string]string]("kit.secret_made.v1", outbox.Public), noop[map[string]string])
		}, []string{"consumer kit_x", "kit.secret_made.v1 as public", "declared internal"}},
		"wrong payload type": {func(s *outbox.Subscriptions) error {
			return outbox.Handle(s, "kit_x", outbox.Named[wrongField]("kit.order_placed.v1", outbox.Public), noop[wrongField])
		}, []string{"consumer kit_x", "kit.order_placed.v1", "outbox_test.wrongField", "outbox_test.orderPlaced", `field "order_id"`, "string", "int"}},
		"field the producer lacks": {func(s *outbox.Subscriptions) error {
			return outbox.Handle(s, "kit_x", outbox.Named[absentField]("kit.order_placed.v1", outbox.Public), noop[absentField])
		}, []string{`field "coupon" is not in the declared payload`}},
		"nested field": {func(s *outbox.Subscriptions) error {
			return outbox.Handle(s, "kit_x", outbox.Named[nested]("kit.order_placed.v1", outbox.Public), noop[nested])
		}, []string{`field "customer.email"`}},
		"raw subscription of an unknown type": {func(s *outbox.Subscriptions) error {
			return s.Add(outbox.Subscription{Consumer: "kit_x", EventType: "kit.order_shipped.v1",
				Handle: func(context.Context, pgx.Tx, outbox.Delivery) error { return nil }})
		}, []string{"no module declares"}},
	}
	for name, c := range cases {
		for _, subs := range []*outbox.Subscriptions{{}, nil} {
			err := c.register(subs)
			for _, w := range c.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("%s (registry %v): %v, want it to mention %q", name, subs != nil, err, w)
				}
			}
			if len(subs.All()) != 0 {
				t.Errorf("%s: refused subscription kept", name)
			}
		}
	}
}

// What is compatible is accepted: the declared handle, or the consumer's
// own type reading some of the fields with types that decode them.
func TestHandleAcceptsCompatiblePayloads(t *testing.T) {
	type fewer struct {
		ID       string          `json:"order_id"`
		Total    float64         `json:"total"`
		Customer map[string]any  `json:"customer"`
		Lines    json.RawMessage `json:"lines"`
		At       string          `json:"at"`
	}
	subs := &outbox.Subscriptions{}
	if err := outbox.Handle(subs, "kit_same", orderPlacedEvent, noop[orderPlaced], outbox.MaxAttempts(2)); err != nil {
		t.Fatal(err)
	}
	if err := outbox.Handle(subs, "kit_fewer", outbox.Named[fewer]("kit.order_placed.v1", outbox.Public), noop[fewer]); err != nil {
		t.Fatal(err)
	}
	if err := outbox.Handle(subs, "kit_any", outbox.Named[map[string]any]("kit.order_placed.v1", outbox.Public), noop[map[string]any]); err != nil {
		t.Fatal(err)
	}
	if err := outbox.Handle(subs, "kit_same", orderPlacedEvent, noop[orderPlaced]); err == nil {
		t.Error("a consumer name taken twice was accepted")
	}
	all := subs.All()
	if len(all) != 3 || all[0].EventType != "kit.order_placed.v1" || all[0].Visibility != outbox.Public || all[0].MaxAttempts != 2 {
		t.Fatalf("subscriptions %+v", all)
	}
}

// The runtime's undecoded delivery reaches a typed handler decoded, and
// data that does not decode is a permanent error (parked at once).
func TestTypedHandlerDecodes(t *testing.T) {
	subs := &outbox.Subscriptions{}
	var got outbox.Received[orderPlaced]
	err := outbox.Handle(subs, "kit_typed", orderPlacedEvent, func(_ context.Context, _ pgx.Tx, e outbox.Received[orderPlaced]) error {
		got = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	h := subs.All()[0].Handle
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	d := outbox.Delivery{Attempt: 2, Event: outbox.CloudEvent{ID: "e-1", Subject: "o-1", Time: at, Type: "kit.order_placed.v1",
		Data: json.RawMessage(`{"order_id":"o-1","total":5,"lines":[{"sku":"a","qty":2}],"added_later":true}`)}}
	if err := h(context.Background(), nil, d); err != nil {
		t.Fatal(err)
	}
	if got.ID != "e-1" || got.Key != "o-1" || !got.Time.Equal(at) || got.Attempt != 2 || got.Data.OrderID != "o-1" ||
		got.Data.Total != 5 || len(got.Data.Lines) != 1 || got.Data.Lines[0].Qty != 2 || got.Event.ID != "e-1" {
		t.Fatalf("received %+v", got)
	}
	for _, bad := range []string{`{"total":"five"}`, `[1]`, `null`, ``, `{"order_id":`} {
		d.Event.Data = json.RawMessage(bad)
		err := h(context.Background(), nil, d)
		if !outbox.IsPermanent(err) || !strings.Contains(err.Error(), "decode kit.order_placed.v1 e-1") {
			t.Errorf("data %q: %v, want a permanent decode error", bad, err)
		}
	}
}
