package outbox_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/cairn-dev/cairn/outbox"
)

// The runtime recognises a mark through any wrapping, and only that mark.
func TestHandlerErrorMarks(t *testing.T) {
	down := errors.New("connection refused")
	cases := []struct {
		err                    error
		unavailable, permanent bool
	}{
		{down, false, false},
		{outbox.Unavailable(down), true, false},
		{fmt.Errorf("mail: send: %w", outbox.Unavailable(down)), true, false},
		{outbox.Permanent(down), false, true},
		{fmt.Errorf("handle: %w", outbox.Permanent(fmt.Errorf("decode: %w", down))), false, true},
		{outbox.Permanent(outbox.Unavailable(down)), true, true},
	}
	for _, c := range cases {
		if outbox.IsUnavailable(c.err) != c.unavailable || outbox.IsPermanent(c.err) != c.permanent || !errors.Is(c.err, down) {
			t.Errorf("%v: unavailable %v, permanent %v", c.err, outbox.IsUnavailable(c.err), outbox.IsPermanent(c.err))
		}
	}
}
