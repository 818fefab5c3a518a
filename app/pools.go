package app

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// sidePool opens a pool of its own on Cairn's database for one part of
// Cairn (consumer handlers, leases), so that part can never take the
// connections the HTTP API needs, nor wait behind the API for one.
func (in *infra) sidePool(ctx context.Context, name string, maxConns int32, params map[string]string) (*pgxpool.Pool, error) {
	cfg := in.pool.Config().Copy()
	cfg.MaxConns, cfg.MinConns = maxConns, 0
	cfg.ConnConfig.RuntimeParams["application_name"] = "cairn " + name
	// The API's idle-transaction limit is for request transactions; a
	// side pool sets its own when it wants one (params).
	delete(cfg.ConnConfig.RuntimeParams, "idle_in_transaction_session_timeout")
	for k, v := range params {
		cfg.ConnConfig.RuntimeParams[k] = v
	}
	p, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s pool: %w", name, err)
	}
	in.side = append(in.side, p)
	return p, nil
}

// consumerPools are the consumer runtime's pools: handlers get a quarter of
// the API's size (at least 2), leases 2. A handler transaction left idle
// for 5 s is ended by PostgreSQL: a replica frozen in the middle of one
// (SIGSTOP, a cut network) then lets go of the rows the next holder of the
// consumer needs, instead of holding them until TCP gives up.
func (in *infra) consumerPools(ctx context.Context, apiConns int) (handlers, leases *pgxpool.Pool, err error) {
	handlers, err = in.sidePool(ctx, "handlers", int32(max(2, apiConns/4)), map[string]string{
		"idle_in_transaction_session_timeout": "5s",
	})
	if err != nil {
		return nil, nil, err
	}
	leases, err = in.sidePool(ctx, "consumer leases", 2, nil)
	if err != nil {
		return nil, nil, err
	}
	return handlers, leases, nil
}
