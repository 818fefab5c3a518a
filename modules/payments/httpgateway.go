package payments

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/outbox"
)

// The HTTP client's limits and the breaker around it, as mail's around
// SMTP: a call that gets no answer within callTimeout fails; after
// breakerFailures such failures in a row the breaker opens and fails every
// call at once for breakerOpenFor, then lets one trial call through.
const (
	callTimeout     = 10 * time.Second
	breakerFailures = 3
	breakerOpenFor  = 3 * time.Second
)

// HTTPGateway is a payment gateway over HTTP (CAIRN_PAYMENTS_URL), behind
// a circuit breaker. The protocol, with the key as the Idempotency-Key:
//
//	POST {base}/authorizations            {"amount","currency","reference"}
//	  -> 200 or 201 {"id","status":"authorized"|"declined"|"voided","reason"?}
//	POST {base}/authorizations/{key}/void
//	  -> 200 {"id","status":"voided"}; 404: nothing was authorised under key
//
// 5xx, 429, timeouts and failed connections mean the gateway is down
// (outbox.Unavailable); any other 4xx means it refused the call. Safe for
// concurrent use.
type HTTPGateway struct {
	base    string
	client  *http.Client
	breaker *gobreaker.CircuitBreaker[Answer]
	log     *slog.Logger
}

// NewHTTPGateway returns a gateway at base. Errors: base is not an
// absolute http(s) URL.
func NewHTTPGateway(base string, log *slog.Logger) (*HTTPGateway, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("payments: CAIRN_PAYMENTS_URL is not an http(s) URL")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g := &HTTPGateway{base: strings.TrimRight(base, "/"), client: &http.Client{Timeout: callTimeout}, log: log}
	g.breaker = gobreaker.NewCircuitBreaker[Answer](gobreaker.Settings{
		Name:        "payment gateway " + u.Host,
		MaxRequests: 1,
		Timeout:     breakerOpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= breakerFailures },
		// A refused call proves the gateway is up.
		IsSuccessful: func(err error) bool { return err == nil || errors.As(err, new(refusedError)) },
		IsExcluded:   func(err error) bool { return errors.Is(err, context.Canceled) },
		OnStateChange: func(name string, from, to gobreaker.State) {
			g.log.Warn("payment gateway circuit breaker", "gateway", u.Host, "from", from.String(), "to", to.String())
		},
	})
	return g, nil
}

// refusedError is a 4xx answer: the gateway is up and said no.
type refusedError struct {
	status int
	body   string
}

func (e refusedError) Error() string { return fmt.Sprintf("refused with %d: %s", e.status, e.body) }

type authorizeRequest struct {
	Amount    int64  `json:"amount"`
	Currency  string `json:"currency"`
	Reference string `json:"reference"`
}

type gatewayAnswer struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Reason string `json:"reason"`
}

// Authorize asks the gateway to authorise amount under key.
func (g *HTTPGateway) Authorize(ctx context.Context, key string, amount modules.Money) (Answer, error) {
	body, _ := json.Marshal(authorizeRequest{Amount: amount.Amount, Currency: amount.Currency, Reference: key})
	return g.call(ctx, "authorize", "/authorizations", key, body, false)
}

// Void asks the gateway to void what key authorised.
func (g *HTTPGateway) Void(ctx context.Context, key string) (Answer, error) {
	return g.call(ctx, "void", "/authorizations/"+url.PathEscape(key)+"/void", key, []byte("{}"), true)
}

func (g *HTTPGateway) call(ctx context.Context, what, path, key string, body []byte, notFoundIsVoid bool) (Answer, error) {
	a, err := g.breaker.Execute(func() (Answer, error) { return g.post(ctx, path, key, body, notFoundIsVoid) })
	var refused refusedError
	switch {
	case err == nil:
		return a, nil
	case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
		return Answer{}, outbox.Unavailable(fmt.Errorf("payments: %s %s: gateway %w after %d failures in a row", what, key, err, breakerFailures))
	case ctx.Err() != nil:
		return Answer{}, fmt.Errorf("payments: %s %s: %w", what, key, ctx.Err())
	case errors.As(err, &refused):
		return Answer{}, fmt.Errorf("payments: %s %s: the gateway %w", what, key, err)
	default:
		return Answer{}, outbox.Unavailable(fmt.Errorf("payments: %s %s: %w", what, key, err))
	}
}

func (g *HTTPGateway) post(ctx context.Context, path, key string, body []byte, notFoundIsVoid bool) (Answer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.base+path, bytes.NewReader(body))
	if err != nil {
		return Answer{}, refusedError{0, err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	resp, err := g.client.Do(req)
	if err != nil {
		return Answer{}, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode == http.StatusNotFound && notFoundIsVoid:
		return Answer{Status: StatusVoided}, nil
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return Answer{}, fmt.Errorf("gateway answered %d: %s", resp.StatusCode, bytes.TrimSpace(raw))
	case resp.StatusCode >= 300:
		return Answer{}, refusedError{resp.StatusCode, string(bytes.TrimSpace(raw))}
	}
	var a gatewayAnswer
	if err := json.Unmarshal(raw, &a); err != nil {
		return Answer{}, fmt.Errorf("gateway answered %d with %q: %w", resp.StatusCode, raw, err)
	}
	switch a.Status {
	case StatusAuthorized, StatusDeclined, StatusVoided:
	default:
		return Answer{}, refusedError{resp.StatusCode, "unknown status " + a.Status}
	}
	return Answer{Status: a.Status, ID: a.ID, Reason: a.Reason}, nil
}
