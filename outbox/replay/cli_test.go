package replay_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/cairn-dev/cairn/app"
	"github.com/cairn-dev/cairn/modules/mail"
	"github.com/cairn-dev/cairn/outbox/replay"
	"github.com/cairn-dev/cairn/testenv"
)

// `cairn replay` asks the running Cairn for a replay and follows it to
// the end; a refused one exits 1 with the API's reason, bad usage 2.
func TestReplayCommand(t *testing.T) {
	a := startReplayApp(t, testenv.AppOptions{Modules: append(app.Modules(), replaytestModule(false, 0))})
	w := newWriter(a.DB.Pool, 10)
	if err := w.write(context.Background(), 300, 100); err != nil {
		t.Fatal(err)
	}
	a.Drain()
	cmd := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := replay.Command(context.Background(), a.URL, adminToken, args, &out, &errb)
		return code, out.String(), errb.String()
	}
	code, out, errs := cmd(consumerSeen)
	if code != 0 || !strings.Contains(out, "done: 300 events") || !strings.Contains(out, "live again on EVENTS") {
		t.Fatalf("rebuild: exit %d\n%s%s", code, out, errs)
	}
	seenReport(t, a.Count, consumerSeen, 300)
	if code, out, errs := cmd(mail.Consumer); code != 1 || !strings.Contains(errs, "replay_not_allowed") {
		t.Fatalf("a rebuild of mail: exit %d\n%s%s", code, out, errs)
	}
	if code, out, errs := cmd("--dry-run", mail.Consumer); code != 0 || !strings.Contains(out, "done: 0 events") {
		t.Fatalf("a dry run of mail: exit %d\n%s%s", code, out, errs)
	}
	if code, _, _ := cmd(); code != 2 {
		t.Fatalf("no consumer: exit %d, want 2", code)
	}
}
