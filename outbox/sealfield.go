package outbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// Personal fields are kept in the lake and its exports sealed with a key
// of their person (outbox/privacy holds the keys): AES-256-GCM from Go's
// standard library, a random 96-bit nonce per value, and the event id and
// field path as additional data, so a sealed value cannot be moved to
// another event or field unnoticed. Destroying the key forgets the value
// everywhere it was copied sealed (crypto-shredding).
//
// A sealed value is a JSON string: PersonalSealedPrefix, then base64 (standard,
// unpadded) of nonce || ciphertext || tag, the plaintext being the field's
// JSON.

// PersonalSealedPrefix starts every value sealed with a person's key. It
// differs from SealedPrefix (secrets of dead letters, sealed with
// CAIRN_SECRET_KEY): a value says which key opens it.
const PersonalSealedPrefix = "cairn:personal:v1:"

// KeySize is the size of a person's key (AES-256).
const KeySize = 32

// ErrNotSealed is returned by OpenValue for a string that is no sealed
// value.
var ErrNotSealed = errors.New("outbox: not a sealed value")

// NewKey returns a fresh random key.
func NewKey() ([]byte, error) {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("outbox: new key: %w", err)
	}
	return k, nil
}

// SealValue seals plaintext (a field's JSON) with key, bound to aad.
func SealValue(key, plaintext []byte, aad string) (string, error) {
	g, err := gcm(key)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, g.NonceSize(), g.NonceSize()+len(plaintext)+g.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("outbox: nonce: %w", err)
	}
	return PersonalSealedPrefix + base64.RawStdEncoding.EncodeToString(g.Seal(nonce, nonce, plaintext, []byte(aad))), nil
}

// OpenValue returns the plaintext of a value SealValue made with key and
// aad. Errors: ErrNotSealed, or an authentication failure (the wrong key,
// event or field).
func OpenValue(key []byte, sealed, aad string) ([]byte, error) {
	b64, ok := strings.CutPrefix(sealed, PersonalSealedPrefix)
	if !ok {
		return nil, ErrNotSealed
	}
	raw, err := base64.RawStdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("outbox: sealed value: %w", err)
	}
	g, err := gcm(key)
	if err != nil {
		return nil, err
	}
	if len(raw) < g.NonceSize()+g.Overhead() {
		return nil, fmt.Errorf("outbox: sealed value too short")
	}
	out, err := g.Open(nil, raw[:g.NonceSize()], raw[g.NonceSize():], []byte(aad))
	if err != nil {
		return nil, fmt.Errorf("outbox: open sealed value: %w", err)
	}
	return out, nil
}

// IsSealed reports whether a JSON string value is sealed with a person's key.
func IsSealed(s string) bool { return strings.HasPrefix(s, PersonalSealedPrefix) }

func gcm(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("outbox: a key is %d bytes, not %d", KeySize, len(key))
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}
