package users

import (
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Input limits. Passwords are capped at 72 bytes because bcrypt ignores
// (and x/crypto rejects) anything longer; an email address is at most 254
// characters (RFC 5321's path limit minus the brackets).
const (
	MaxUsernameLength  = 100 // characters
	MaxEmailLength     = 254 // bytes
	MinPasswordLength  = 8   // characters
	MaxPasswordBytes   = 72
	emailFormatMessage = "must be an email address such as ada@example.com, without a display name"
)

// validateSignUp returns what is wrong with each field of a sign-up, whose
// username and email are already trimmed.
func validateSignUp(username, email, password string) map[string]string {
	fields := map[string]string{}
	switch {
	case username == "":
		fields["username"] = "is required"
	case utf8.RuneCountInString(username) > MaxUsernameLength:
		fields["username"] = "must be at most 100 characters"
	case strings.IndexFunc(username, unicode.IsControl) >= 0:
		fields["username"] = "must not contain control characters"
	}
	switch {
	case email == "":
		fields["email"] = "is required"
	case len(email) > MaxEmailLength:
		fields["email"] = "must be at most 254 characters"
	case !validEmail(email):
		fields["email"] = emailFormatMessage
	}
	switch {
	case utf8.RuneCountInString(password) < MinPasswordLength:
		fields["password"] = "must be at least 8 characters"
	case len(password) > MaxPasswordBytes:
		fields["password"] = "must be at most 72 bytes"
	}
	return fields
}

// validEmail accepts a bare address only: ParseAddress also takes
// "Ada <ada@example.com>", "<ada@example.com>" and comments, and those
// parse to an address that differs from the input.
func validEmail(email string) bool {
	a, err := mail.ParseAddress(email)
	return err == nil && a.Name == "" && a.Address == email
}
