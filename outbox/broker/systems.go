package broker

import (
	"fmt"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"golang.org/x/crypto/bcrypt"
)

// System is an outside system's login on NATS: one user each, so that no
// system can touch another's consumer or read its replies.
type System struct {
	Name     string
	Password string
}

// users returns the NATS users for the outside systems, with bcrypt hashes
// for passwords and SystemPermissions each.
func systemUsers(systems []System) ([]*server.User, error) {
	var out []*server.User
	for _, s := range systems {
		if err := ValidSystemName(s.Name); err != nil {
			return nil, fmt.Errorf("broker: outside system: %w", err)
		}
		hash, err := bcrypt.GenerateFromPassword([]byte(s.Password), bcrypt.DefaultCost)
		if err != nil {
			return nil, fmt.Errorf("broker: hash the password of %s: %w", s.Name, err)
		}
		out = append(out, &server.User{Username: s.Name, Password: string(hash), Permissions: SystemPermissions(s.Name)})
	}
	return out, nil
}

// AuthorizationConfig is the `authorization` block of a NATS server
// configuration that gives Cairn's user (cairnPassword, as in
// CAIRN_NATS_URL) every right and each outside system its
// SystemPermissions, passwords as bcrypt hashes: what `cairn nats users`
// prints for your own NATS server. A "$" is written as is; inside a
// docker-compose.yml it must be doubled ("$$").
func AuthorizationConfig(cairnPassword string, systems []System) (string, error) {
	var b strings.Builder
	b.WriteString("authorization {\n  users = [\n")
	fmt.Fprintf(&b, "    {user: %q, password: %q}\n", internalUser, cairnPassword)
	for _, s := range systems {
		if err := ValidSystemName(s.Name); err != nil {
			return "", err
		}
		hash, err := bcrypt.GenerateFromPassword([]byte(s.Password), bcrypt.DefaultCost)
		if err != nil {
			return "", fmt.Errorf("broker: hash the password of %s: %w", s.Name, err)
		}
		p := SystemPermissions(s.Name)
		fmt.Fprintf(&b, "    # %s: inbox prefix %s, durable consumer %s on EVENTS\n", s.Name, SystemInboxPrefix(s.Name), s.Name)
		fmt.Fprintf(&b, "    {user: %q, password: %q, permissions: {\n", s.Name, string(hash))
		fmt.Fprintf(&b, "      publish: {allow: [%s], deny: [%s]}\n", quoted(p.Publish.Allow), quoted(p.Publish.Deny))
		fmt.Fprintf(&b, "      subscribe: {allow: [%s], deny: [%s]}\n", quoted(p.Subscribe.Allow), quoted(p.Subscribe.Deny))
		b.WriteString("    }}\n")
	}
	b.WriteString("  ]\n}\n")
	return b.String(), nil
}

func quoted(subjects []string) string {
	q := make([]string, len(subjects))
	for i, s := range subjects {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}
