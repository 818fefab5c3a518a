package pgserver

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
)

// socketPort is used in socket mode only to name the socket file
// (.s.PGSQL.5432). Sockets live in each server's own data directory, so two
// instances never collide even though they share the number.
const socketPort = 5432

// maxSocketPath is sizeof(sockaddr_un.sun_path) minus the terminating NUL;
// postgres refuses longer socket paths.
const maxSocketPath = 107

// listenMode decides how clients reach the server. A Unix socket in the data
// directory is preferred: nothing else on the machine can reach it and no
// port can be taken by someone else. Only when the data directory path is
// too long for a socket address do we fall back to a loopback TCP port.
type listenMode struct {
	tcp  bool
	port int
}

func chooseListen(dataDir string) (listenMode, error) {
	if len(socketPath(dataDir)) <= maxSocketPath {
		return listenMode{port: socketPort}, nil
	}
	port, err := freeLoopbackPort()
	if err != nil {
		return listenMode{}, err
	}
	return listenMode{tcp: true, port: port}, nil
}

func socketPath(dataDir string) string {
	return filepath.Join(dataDir, ".s.PGSQL."+strconv.Itoa(socketPort))
}

// freeLoopbackPort asks the kernel for an unused port. Another process could
// grab it between our Close and postgres' bind; that race is accepted
// because postgres then fails loudly (and the log tail says why).
func freeLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free loopback TCP port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("release probe listener on port %d: %w", port, err)
	}
	return port, nil
}

// listenSettings returns the server settings for m. In TCP mode no Unix
// socket is configured at all: the data directory path is by definition too
// long for one, and postgres treats "could not create any Unix-domain
// sockets" as fatal.
func listenSettings(dataDir string, m listenMode) map[string]string {
	s := map[string]string{
		"port":                    strconv.Itoa(m.port),
		"unix_socket_permissions": "0700",
	}
	if m.tcp {
		s["listen_addresses"] = "127.0.0.1"
		s["unix_socket_directories"] = ""
	} else {
		s["listen_addresses"] = ""
		// Double quotes keep commas and spaces in the path from being read
		// as list separators.
		s["unix_socket_directories"] = `"` + strings.ReplaceAll(dataDir, `"`, `""`) + `"`
	}
	return s
}

func connURL(password, dataDir string, m listenMode, db string) string {
	user := url.UserPassword(superuser, password).String()
	if m.tcp {
		return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", user, m.port, url.PathEscape(db))
	}
	// Slashes are left unescaped so the URL stays readable; pgx accepts both.
	host := strings.ReplaceAll(url.QueryEscape(dataDir), "%2F", "/")
	return fmt.Sprintf("postgres://%s@/%s?host=%s&port=%d&sslmode=disable", user, url.PathEscape(db), host, m.port)
}
