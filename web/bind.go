package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/errs"
)

// BindJSON decodes the request body into dst strictly: the body must be
// JSON (415 otherwise), one object, with no unknown fields (400
// validation_failed naming the field), within the body limit (413).
func BindJSON(c echo.Context, dst any) error {
	ct := c.Request().Header.Get(echo.HeaderContentType)
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != echo.MIMEApplicationJSON {
		return echo.NewHTTPError(http.StatusUnsupportedMediaType, "the body must be JSON (Content-Type: application/json)")
	}
	dec := json.NewDecoder(c.Request().Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		return errs.Validation(map[string]string{"body": "must hold exactly one JSON object"})
	}
	return nil
}

func decodeError(err error) error {
	var tooLarge *http.MaxBytesError
	var syntax *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &tooLarge):
		return echo.NewHTTPError(http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is larger than %d bytes", tooLarge.Limit))
	case errors.Is(err, io.EOF):
		return errs.Validation(map[string]string{"body": "is empty; want a JSON object"})
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
		return errs.Validation(map[string]string{"body": "is not valid JSON"})
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			field = "body"
		}
		return errs.Validation(map[string]string{field: "must be a " + jsonKind(typeErr.Type.Kind().String())})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return errs.Validation(map[string]string{name: "is not a known field"})
	}
	return errs.Validation(map[string]string{"body": "could not be read as JSON"})
}

func jsonKind(goKind string) string {
	switch {
	case strings.HasPrefix(goKind, "int"), strings.HasPrefix(goKind, "uint"):
		return "whole number"
	case strings.HasPrefix(goKind, "float"):
		return "number"
	case goKind == "string":
		return "string"
	case goKind == "bool":
		return "boolean"
	case goKind == "struct", goKind == "map":
		return "JSON object"
	case goKind == "slice":
		return "JSON array"
	}
	return goKind
}
