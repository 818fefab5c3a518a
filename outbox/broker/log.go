package broker

import (
	"fmt"
	"log/slog"
	"regexp"
	"strings"
)

// slogAdapter logs the embedded server's messages through Cairn's logger.
// What an outside client did wrong (a permission violation, a wrong
// password) is a warning naming the user, not an error: a misbehaving
// client must not fill the operator's errors. A fatal message (the server
// cannot listen, JetStream cannot start) is also handed to fatal, so
// start-up stops at once instead of waiting for a server that will never
// accept clients.
type slogAdapter struct {
	log   *slog.Logger
	fatal chan<- string
}

// clientUser finds the user in the server's client log prefix
// (…"$G/user:billing" - Publish Violation…) or in an authentication error
// (…authentication error - User "billing").
var clientUser = regexp.MustCompile(`"[^"]*/user:([^"]+)"|User "([^"]+)"`)

// byClient reports whether a server error is something a client did, and
// which user it was.
func byClient(msg string) (user string, ok bool) {
	if !strings.Contains(msg, "Violation") && !strings.Contains(msg, "authentication error") {
		return "", false
	}
	if m := clientUser.FindStringSubmatch(msg); m != nil {
		return m[1] + m[2], true
	}
	return "", true
}

func (a *slogAdapter) Noticef(format string, v ...any) {
	a.log.Debug(fmt.Sprintf(format, v...), "component", "nats")
}
func (a *slogAdapter) Warnf(format string, v ...any) {
	a.log.Warn(fmt.Sprintf(format, v...), "component", "nats")
}
func (a *slogAdapter) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	a.log.Error(msg, "component", "nats")
	select {
	case a.fatal <- msg:
	default:
	}
}
func (a *slogAdapter) Errorf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	if user, ok := byClient(msg); ok {
		a.log.Warn("a NATS client was refused: "+msg, "component", "nats", "user", user)
		return
	}
	a.log.Error(msg, "component", "nats")
}
func (a *slogAdapter) Debugf(format string, v ...any) {
	a.log.Debug(fmt.Sprintf(format, v...), "component", "nats")
}
func (a *slogAdapter) Tracef(string, ...any) {}
