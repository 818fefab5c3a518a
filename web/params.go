package web

import (
	"strings"

	"github.com/labstack/echo/v4"
)

// wholeSegmentParams answers 404 when the request path is not the route's
// shape: as many segments as the route, and a non-empty one for each path
// parameter. Echo lets a parameter at the end of a route take the rest of
// the path (/users/:id matches /users/abc/no-such-thing with id
// "abc/no-such-thing"), so an unknown path reached the handler and came back
// as 400 validation_failed, or as 405 when only a sibling method matched. It
// runs after routing, for every route of every module, so no handler has to
// check. Routes with a wildcard ("*") take the rest of the path on purpose
// and are left alone, as are requests no route matched (already 404).
func wholeSegmentParams(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		route := c.Path()
		if route == "" || strings.Contains(route, "*") {
			return next(c)
		}
		// The path echo routed on: the escaped form when there is one.
		path := c.Request().URL.RawPath
		if path == "" {
			path = c.Request().URL.Path
		}
		want, got := strings.Split(route, "/"), strings.Split(path, "/")
		if len(want) != len(got) {
			return echo.ErrNotFound
		}
		for i, seg := range want {
			if strings.HasPrefix(seg, ":") && got[i] == "" {
				return echo.ErrNotFound
			}
		}
		return next(c)
	}
}
