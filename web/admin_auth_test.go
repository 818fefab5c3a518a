package web

import "testing"

// The Bearer scheme's name is case-insensitive; the token is not.
func TestBearerSchemeIsCaseInsensitive(t *testing.T) {
	for header, want := range map[string]string{
		"Bearer s3cret": "s3cret", "bearer s3cret": "s3cret", "BEARER s3cret": "s3cret", "  Bearer   s3cret ": "s3cret",
		"Basic s3cret": "", "Bearer": "", "Bearer ": "", "s3cret": "", "": "",
	} {
		got, ok := bearer(header)
		if ok != (want != "") || got != want && ok {
			t.Errorf("bearer(%q) = %q, %v; want %q", header, got, ok, want)
		}
	}
}
