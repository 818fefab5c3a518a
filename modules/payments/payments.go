// Package payments authorises and voids payments at an outside payment
// gateway (schema payments). It carries out two commands, internal events
// it declares (payments.authorize_payment.v1, payments.void_payment.v1),
// and answers each with a public event keyed by the payment id.
//
// The gateway is reached over HTTP (CAIRN_PAYMENTS_URL) behind a circuit
// breaker, or, with that setting empty, is a simulated one in the process
// that declines amounts above CAIRN_PAYMENTS_DECLINE_ABOVE. The payment id
// is the idempotency key of every call, so a retried call (a redelivery, a
// crash between the call and its record) never authorises twice.
//
// Each command is handled in two phases (outbox.HandleEffect): the gateway
// call, with no transaction open and no connection held, then the record
// of its answer and the reply in the consumer's transaction. A payment
// already recorded is answered from the record, without a call. While the
// gateway is down (the breaker open, timeouts, 5xx) the handler returns
// outbox.Unavailable and the consumer pauses, retrying slowly in order;
// a call the gateway refuses (4xx) is retried and then dead-lettered.
package payments

import (
	"embed"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/outbox"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Definition registers the module with the app (app/modules.go).
var Definition = modules.Define("payments", migrations, New)

// Module is the payments facade.
type Module struct {
	pool    *pgxpool.Pool
	log     *slog.Logger
	gateway Gateway
	mode    string // "http" or "simulated"
}

// New builds the module on the gateway d.Config names. Errors: a
// CAIRN_PAYMENTS_URL it cannot use, a subscription the catalog refuses.
func New(d modules.Deps) (*Module, error) {
	m := &Module{pool: d.Pool, log: d.Logger("payments"), gateway: Simulated{DeclineAbove: d.Config.PaymentsDeclineAbove}, mode: "simulated"}
	if d.Config.PaymentsURL != "" {
		g, err := NewHTTPGateway(d.Config.PaymentsURL, m.log)
		if err != nil {
			return nil, err
		}
		m.gateway, m.mode = g, "http"
	}
	d.Route(m.routes)
	for _, err := range []error{
		// Effectful: a dry run records the gateway calls instead of making
		// them, and rolls back the answers it would send the saga.
		outbox.HandleEffect(d.Consumers, "payments_authorize", CommandAuthorizePayment, m.callAuthorize, m.recordAuthorize, outbox.EffectfulReplay()),
		outbox.HandleEffect(d.Consumers, "payments_void", CommandVoidPayment, m.callVoid, m.recordVoid, outbox.EffectfulReplay()),
	} {
		if err != nil {
			return nil, fmt.Errorf("payments: %w", err)
		}
	}
	return m, registerFold(d.Folds)
}

// Gateway says which gateway the module talks to: "http" or "simulated".
func (m *Module) Gateway() string { return m.mode }
