package lake

import (
	"strings"

	"github.com/cairn-dev/cairn/outbox"
)

// SecretPaths returns, for each declared event type with fields tagged
// cairn:"secret", the key path of each such field in its data (["token"],
// or ["customer", "card"] for a nested one): what the move removes before
// an event enters the lake. A secret object field is removed whole, nested
// fields with it.
func SecretPaths() map[string][][]string {
	out := map[string][][]string{}
	for _, d := range outbox.Catalog() {
		for _, f := range d.Fields {
			if f.Secret {
				out[d.Type] = append(out[d.Type], strings.Split(f.Path, "."))
			}
		}
	}
	return out
}
