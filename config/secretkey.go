package config

import (
	"encoding/base64"
	"errors"
	"fmt"
)

// SecretKeySize is the size of CAIRN_SECRET_KEY once decoded: an AES-256
// key, which seals the secret fields of dead letters (outbox.Sealer).
const SecretKeySize = 32

// SecretKeyBytes decodes CAIRN_SECRET_KEY: nil when it is not set.
// Standard and URL-safe base64 are accepted, padded or not. Errors: not
// base64, or not SecretKeySize bytes (the error never holds the value).
func (c Config) SecretKeyBytes() ([]byte, error) {
	if c.SecretKey == "" {
		return nil, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if key, err := enc.DecodeString(c.SecretKey); err == nil {
			if len(key) != SecretKeySize {
				return nil, fmt.Errorf("it is %d bytes once decoded, not %d", len(key), SecretKeySize)
			}
			return key, nil
		}
	}
	return nil, errors.New("it is not base64")
}
