package notes_test

import (
	"os"
	"strings"
	"testing"
)

// README.md's "Adding a module" shows this module's files whole: they must
// stay the very files make test builds and runs.
func TestREADMEShowsTheseFiles(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"migrations/00001_notes.sql", "events.go", "notes.go"} {
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(readme), "\n"+string(src)+"```") {
			t.Errorf("README.md does not show modules/notes/%s as it is", name)
		}
	}
}
