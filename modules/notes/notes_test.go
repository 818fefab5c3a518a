package notes_test

import (
	"testing"

	"github.com/cairn-dev/cairn/app"
	"github.com/cairn-dev/cairn/modules/notes"
	"github.com/cairn-dev/cairn/testenv"
)

// A note is stored with its event in one transaction; the module's handler
// then counts its words. A blank note is refused and appends nothing.
func TestNoteIsAddedThenCounted(t *testing.T) {
	// The registration line, as app/modules.go would hold it.
	a := testenv.StartApp(t, testenv.AppOptions{Modules: append(app.Modules(), notes.Definition)})
	var r testenv.Response
	evs := a.Appended(func() { r = a.API("POST", "/notes", map[string]string{"text": "the quick brown fox"}) })
	id, _ := r.Body["id"].(string)
	if r.Status != 201 || len(evs) != 1 || evs[0].Type != "notes.note_added.v1" || evs[0].Subject != id {
		t.Fatalf("add: %d %s, appended %+v", r.Status, r.Raw, evs)
	}
	a.Drain()
	if n := a.Count(`SELECT count(*) FROM notes.notes WHERE id = $1 AND words = 4`, id); n != 1 {
		t.Fatal("the handler did not count the note's 4 words")
	}
	evs = a.Appended(func() { r = a.API("POST", "/notes", map[string]string{"text": " "}) })
	if r.Status != 400 || r.Field("text") == nil || len(evs) != 0 {
		t.Fatalf("blank note: %d %s, appended %d events", r.Status, r.Raw, len(evs))
	}
}
