package config

import (
	"fmt"
	"io"
	"net/url"
	"reflect"
	"strings"
)

// Masked is what `cairn config` prints: the effective configuration as
// NAME=value lines with every secret replaced, so it can be pasted into a
// bug report.
func (c Config) Masked() []string {
	v := reflect.ValueOf(c)
	t := v.Type()
	lines := make([]string, 0, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		val := fmt.Sprint(v.Field(i).Interface())
		switch f.Tag.Get("secret") {
		case "value":
			if val != "" {
				val = "****"
			}
		case "url":
			val = mask(val)
		case "pairs":
			val = maskPairs(val)
		}
		lines = append(lines, f.Tag.Get("env")+"="+val)
	}
	return lines
}

// Print writes Masked to w, one setting a line.
func (c Config) Print(w io.Writer) error {
	_, err := io.WriteString(w, strings.Join(c.Masked(), "\n")+"\n")
	return err
}

// mask hides the password of every URL in a comma-separated list.
func mask(raw string) string {
	if raw == "" {
		return ""
	}
	parts := strings.Split(raw, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil {
			parts[i] = "****"
			continue
		}
		if u.User != nil {
			if _, has := u.User.Password(); has {
				u.User = url.UserPassword(u.User.Username(), "xxxx")
			}
		}
		q := u.Query()
		for k := range q {
			if strings.Contains(strings.ToLower(k), "password") {
				q.Set(k, "xxxx")
			}
		}
		u.RawQuery = q.Encode()
		parts[i] = strings.ReplaceAll(u.String(), "xxxx", "****")
	}
	return strings.Join(parts, ",")
}

// maskPairs hides the passwords of a name:password list.
func maskPairs(raw string) string {
	if raw == "" {
		return ""
	}
	parts := strings.Split(raw, ",")
	for i, p := range parts {
		parts[i] = maskPair(p)
	}
	return strings.Join(parts, ",")
}
