package web

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/errs"
)

// ErrorBody is the one error shape every endpoint answers with.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail says what went wrong: a stable code for programs, a message
// for people, and per-field problems for validation errors.
type ErrorDetail struct {
	Code    string            `json:"code"`
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields,omitempty"`
}

var kindStatus = map[errs.Kind]int{
	errs.Invalid:         http.StatusBadRequest,
	errs.NotFound:        http.StatusNotFound,
	errs.Conflict:        http.StatusConflict,
	errs.Unauthorized:    http.StatusUnauthorized,
	errs.Forbidden:       http.StatusForbidden,
	errs.Unprocessable:   http.StatusUnprocessableEntity,
	errs.Unavailable:     http.StatusServiceUnavailable,
	errs.TooManyRequests: http.StatusTooManyRequests,
}

// ErrorHandler maps every error a handler returns to the JSON error shape.
// Only unclassified (internal) errors are logged, and their cause is never
// shown to the client.
func ErrorHandler(log *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		status, body := errorResponse(err)
		if status >= 500 {
			log.Error("request failed", "err", err, "method", c.Request().Method, "path", c.Path(),
				"request_id", c.Response().Header().Get(echo.HeaderXRequestID))
		}
		if c.Request().Method == http.MethodHead {
			err = c.NoContent(status)
		} else {
			err = c.JSON(status, body)
		}
		if err != nil {
			log.Warn("write error response", "err", err)
		}
	}
}

func errorResponse(err error) (int, ErrorBody) {
	var e *errs.Error
	if errors.As(err, &e) {
		if status, ok := kindStatus[e.Kind]; ok {
			return status, ErrorBody{ErrorDetail{Code: e.Code, Message: e.Message, Fields: e.Fields}}
		}
		return http.StatusInternalServerError, internalError
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		return he.Code, ErrorBody{ErrorDetail{Code: httpCode(he.Code), Message: httpMessage(he)}}
	}
	return http.StatusInternalServerError, internalError
}

var internalError = ErrorBody{ErrorDetail{Code: "internal", Message: "internal error; the request id in X-Request-Id helps find it in the logs"}}

func httpCode(status int) string {
	switch status {
	case http.StatusNotFound:
		return "not_found"
	case http.StatusRequestEntityTooLarge:
		return "payload_too_large"
	case http.StatusUnsupportedMediaType:
		return "unsupported_media_type"
	case http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusBadRequest:
		return "bad_request"
	}
	return strings.ReplaceAll(strings.ToLower(http.StatusText(status)), " ", "_")
}

func httpMessage(he *echo.HTTPError) string {
	if he.Code >= 500 {
		return http.StatusText(he.Code)
	}
	if m, ok := he.Message.(string); ok && m != "" && m != http.StatusText(he.Code) {
		return m
	}
	return strings.ToLower(http.StatusText(he.Code))
}
