package config

import (
	"strings"
	"testing"
)

// CAIRN_SECRET_KEY is 32 bytes in base64; anything else stops start-up
// naming the setting without printing the value, and `cairn config` masks
// it.
func TestSecretKeyIsValidatedAndMasked(t *testing.T) {
	const good = "q0vJ0Xb4nS3tKkM0mB3fRZ6bA1p9yQeHc2s8uVwT5xE=" // 32 bytes
	for _, bad := range []string{"hunter2-not-base64!", "aHVudGVyMg==" /* 7 bytes */} {
		c, err := Load(env(map[string]string{"CAIRN_SECRET_KEY": bad}))
		if err == nil {
			err = c.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), "CAIRN_SECRET_KEY") || strings.Contains(err.Error(), bad) {
			t.Errorf("CAIRN_SECRET_KEY=%s: %v", bad, err)
		}
	}
	c, err := Load(env(map[string]string{"CAIRN_SECRET_KEY": good}))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if key, err := c.SecretKeyBytes(); err != nil || len(key) != SecretKeySize {
		t.Fatalf("key %d bytes, %v", len(key), err)
	}
	out := strings.Join(c.Masked(), "\n")
	if strings.Contains(out, good) || !strings.Contains(out, "CAIRN_SECRET_KEY=****") {
		t.Fatalf("masked:\n%s", out)
	}
}
