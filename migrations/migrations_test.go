package migrations

import (
	"io/fs"
	"strconv"
	"strings"
	"testing"
)

// A platform migration numbered like a module's old global one would be
// taken for applied on every database migrated before the split, and never
// run there.
func TestPlatformVersionsAvoidLegacyOnes(t *testing.T) {
	taken := map[int64]string{}
	for module, vs := range legacyVersions {
		for _, v := range vs {
			taken[v.global] = module
		}
	}
	names, err := fs.Glob(files, "*.sql")
	if err != nil || len(names) == 0 {
		t.Fatalf("platform migrations: %v %v", names, err)
	}
	for _, name := range names {
		v, err := strconv.ParseInt(strings.SplitN(name, "_", 2)[0], 10, 64)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if m, ok := taken[v]; ok {
			t.Errorf("%s reuses version %d, which databases migrated before 0c7eea4's split hold as %s's: number it above the highest", name, v, m)
		}
	}
}
