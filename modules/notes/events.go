package notes

import "github.com/cairn-dev/cairn/outbox"

// EventNoteAdded is the module's event, the contract with its consumers.
var EventNoteAdded = outbox.Declare[NoteAdded](outbox.EventSpec{
	Type: "notes.note_added.v1", Visibility: outbox.Public,
	Description: "A note was written.",
})

// NoteAdded is the data of notes.note_added.v1; its key is the note id.
type NoteAdded struct {
	NoteID string `json:"note_id"`
	Text   string `json:"text"`
}
