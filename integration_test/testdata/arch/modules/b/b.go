// Package b is clean: it names module a's events, which are strings and not
// SQL, and only its own schema.
package b

const (
	widgetMade   = "a.widget_made.v1"
	widgetTopic  = "events.a.widget_made"
	selectThings = "SELECT id FROM b.things WHERE kind = 'a.widget_made.v1'"
)

// Name is b's facade.
func Name() string { return widgetMade + widgetTopic + selectThings }
