// Package notes is the example module of README.md, "Adding a module": a
// note commits with its event, and the module's own handler of that event
// counts the note's words. It does not ship; its test registers it.
package notes

import (
	"context"
	"embed"
	"fmt"
	"net/http"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/errs"
	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/web"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Definition is what app/modules.go lists to ship the module.
var Definition = modules.Define("notes", migrations, New)

// Module is the notes facade.
type Module struct{ pool *pgxpool.Pool }

// New registers the module's route and its handler.
func New(d modules.Deps) (*Module, error) {
	m := &Module{pool: d.Pool}
	d.Route(func(api *echo.Group) { api.POST("/notes", m.handleNoteAdd) })
	return m, outbox.Handle(d.Consumers, "notes_word_count", EventNoteAdded, m.countWords,
		outbox.RebuildableWith(m.forgetCounts))
}

// Add stores a note and appends its event in the same transaction.
// Errors: Invalid for a blank text.
func (m *Module) Add(ctx context.Context, text string) (id string, err error) {
	if strings.TrimSpace(text) == "" {
		return "", errs.Validation(map[string]string{"text": "is required"})
	}
	err = pgx.BeginFunc(ctx, m.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO notes.notes (text) VALUES ($1) RETURNING id::text`, text).Scan(&id); err != nil {
			return err
		}
		_, err := outbox.Append(ctx, tx, EventNoteAdded.New(id, NoteAdded{NoteID: id, Text: text}))
		return err
	})
	if err != nil {
		return "", fmt.Errorf("notes: add: %w", err)
	}
	return id, nil
}

// countWords runs once per event, in the consumer runtime's transaction.
func (m *Module) countWords(ctx context.Context, tx pgx.Tx, e outbox.Received[NoteAdded]) error {
	_, err := tx.Exec(ctx, `UPDATE notes.notes SET words = $2 WHERE id = $1`, e.Data.NoteID, len(strings.Fields(e.Data.Text)))
	return err
}

// forgetCounts resets what the handler keeps, before a rebuild counts again.
func (m *Module) forgetCounts(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `UPDATE notes.notes SET words = NULL`)
	return err
}

func (m *Module) handleNoteAdd(c echo.Context) error {
	var req struct {
		Text string `json:"text"`
	}
	if err := web.BindJSON(c, &req); err != nil {
		return err
	}
	id, err := m.Add(c.Request().Context(), req.Text)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, map[string]string{"id": id})
}
