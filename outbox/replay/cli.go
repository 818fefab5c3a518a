package replay

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// Command is `cairn replay`: it asks a running Cairn at baseURL for a
// replay over its admin API (POST /api/v1/admin/replays with token) and
// shows the run's progress until it ends: one line rewritten in place on a
// terminal, a line per change otherwise. It returns the exit code: 0 done,
// 1 failed or refused, 2 bad usage.
func Command(ctx context.Context, baseURL, token string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dry := fs.Bool("dry-run", false, "record the outside calls instead of making them, roll the database changes back (the default is a rebuild)")
	from := fs.String("from", "", "first position of the lake, or an RFC 3339 time (default: the beginning)")
	to := fs.String("to", "", "last position of the lake, or an RFC 3339 time, excluded (default: the end)")
	url := fs.String("url", baseURL, "the running Cairn's base URL")
	effects := fs.Int("effects", 20, "how many of a dry run's would-be effects to print at the end")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: cairn replay [--dry-run] [--from X] [--to Y] [--url URL] <consumer>")
		fs.PrintDefaults()
	}
	// The consumer may come before or after the flags.
	var consumer string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		consumer, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if consumer == "" && fs.NArg() == 1 {
		consumer = fs.Arg(0)
	} else if fs.NArg() > 0 || consumer == "" {
		fs.Usage()
		return 2
	}
	if token == "" {
		fmt.Fprintln(stderr, "cairn replay: set CAIRN_ADMIN_TOKEN to the running Cairn's admin token")
		return 2
	}
	c := client{base: strings.TrimRight(*url, "/"), token: token}
	mode := ModeRebuild
	if *dry {
		mode = ModeDryRun
	}
	var run Run
	if err := c.do(ctx, http.MethodPost, "/api/v1/admin/replays", Request{Consumer: consumer, Mode: string(mode), From: *from, To: *to}, &run); err != nil {
		fmt.Fprintf(stderr, "cairn replay: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "replay %s: %s of %s\n", run.ID, run.Mode, run.Consumer)
	tty := isTerminal(stdout)
	last := ""
	for run.Status == StatusRunning {
		select {
		case <-ctx.Done():
			fmt.Fprintf(stdout, "\nstopped watching; the replay goes on: GET %s/api/v1/admin/replays/%s\n", c.base, run.ID)
			return 1
		case <-time.After(500 * time.Millisecond):
		}
		if err := c.do(ctx, http.MethodGet, "/api/v1/admin/replays/"+run.ID, nil, &run); err != nil {
			fmt.Fprintf(stderr, "cairn replay: %v\n", err)
			return 1
		}
		line := fmt.Sprintf("%s: %d events, position %d, %d effects, %d failed", run.Status, run.Processed, run.Position, run.Effects, run.Failed)
		switch {
		case tty:
			fmt.Fprintf(stdout, "\r\033[K%s", line)
		case line != last:
			fmt.Fprintln(stdout, line)
		}
		last = line
	}
	if tty {
		fmt.Fprintln(stdout)
	}
	if run.Handoff != nil {
		fmt.Fprintf(stdout, "live again on %s from sequence %d\n", run.Handoff.Stream, run.Handoff.StartSeq)
	}
	if run.Mode == ModeDryRun && run.Effects > 0 {
		var list struct{ Effects []Effect }
		if err := c.do(ctx, http.MethodGet, fmt.Sprintf("/api/v1/admin/replays/%s/effects?limit=%d", run.ID, max(1, min(*effects, 10000))), nil, &list); err == nil {
			for _, e := range list.Effects {
				fmt.Fprintf(stdout, "would have: %s %s (event %s)\n", e.Effect, e.Detail, e.EventID)
			}
		}
	}
	if run.Status != StatusDone {
		fmt.Fprintf(stderr, "cairn replay: %s: %s\n", run.Status, run.Error)
		return 1
	}
	return 0
}

type client struct{ base, token string }

// do sends a request and decodes a 2xx answer into out; another answer is
// an error carrying the API's message.
func (c client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("is Cairn running at %s? %w", c.base, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error struct {
				Code    string            `json:"code"`
				Message string            `json:"message"`
				Fields  map[string]string `json:"fields"`
			} `json:"error"`
		}
		if json.Unmarshal(raw, &e) != nil || e.Error.Code == "" {
			return fmt.Errorf("%s %s: %s", method, path, resp.Status)
		}
		msg := e.Error.Code + ": " + e.Error.Message
		for f, why := range e.Error.Fields {
			msg += fmt.Sprintf("; %s %s", f, why)
		}
		return fmt.Errorf("%s", msg)
	}
	return json.Unmarshal(raw, out)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
