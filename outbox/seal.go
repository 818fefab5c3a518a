package outbox

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Dead letters must be re-driven after the fault that parked them is
// fixed (an SMTP server misconfigured for an hour), and some of them carry
// a secret that exists nowhere else (an activation token: users keep only
// its hash). So where an event is kept at rest for a later retry, its
// secret fields are sealed rather than dropped: encrypted with AES-256-GCM
// under a key that is never in the database (CAIRN_SECRET_KEY, or a key
// file in the embedded data directory). A sealed value is a JSON string,
// SealedPrefix followed by the base64 of nonce and ciphertext, so the
// field keeps its JSON type and a schema-aware reader still parses the
// event. What operators see is RedactEvent's output, where a sealed value
// is Redacted like a raw one.

// SealedPrefix starts every sealed value; v1 is AES-256-GCM with a 12-byte
// random nonce, the sealed plaintext being the field's JSON encoding.
const SealedPrefix = "sealed:v1:"

// SecretKeySize is the size of a sealing key in bytes (AES-256).
const SecretKeySize = 32

// Sealer seals and unseals the secret fields of events with one key. It is
// safe for concurrent use.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer returns a Sealer for a SecretKeySize-byte key. Errors: a key
// of another size.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != SecretKeySize {
		return nil, fmt.Errorf("outbox: a sealing key is %d bytes, not %d", SecretKeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("outbox: sealing key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("outbox: sealing key: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// NewSecretKey returns SecretKeySize random bytes, from crypto/rand.
func NewSecretKey() []byte {
	key := make([]byte, SecretKeySize)
	_, _ = rand.Read(key) // never fails (crypto/rand's contract since Go 1.24)
	return key
}

// RandomSealer returns a Sealer with a fresh random key: what a process
// uses when it was given none. What it seals no other process can unseal.
func RandomSealer() *Sealer {
	s, err := NewSealer(NewSecretKey())
	if err != nil {
		panic(err) // the key has the right size
	}
	return s
}

// SealEvent returns a CloudEvents JSON document with the raw secret fields
// of its data sealed, and whether anything changed. Values already sealed
// and values already Redacted are left as they are, so sealing twice
// changes nothing. A document that is not a CloudEvent, or whose type has
// no secret field, comes back as it is; data that cannot be read as a JSON
// object is sealed whole. A nil Sealer redacts instead (RedactEvent).
func (s *Sealer) SealEvent(raw []byte) ([]byte, bool) {
	if s == nil {
		return RedactEvent(raw)
	}
	return rewriteSecrets(raw, false, func(aad []byte, v any) (any, bool) {
		if str, ok := v.(string); ok && (str == Redacted || strings.HasPrefix(str, SealedPrefix)) {
			return v, false
		}
		plain, err := json.Marshal(v)
		if err != nil {
			return Redacted, true
		}
		nonce := make([]byte, s.aead.NonceSize())
		_, _ = rand.Read(nonce)
		return SealedPrefix + base64.StdEncoding.EncodeToString(s.aead.Seal(nonce, nonce, plain, aad)), true
	})
}

// UnsealEvent returns a CloudEvents JSON document with its sealed secret
// fields opened, for the handler that retries it; and how many sealed
// values it could not open (sealed under another key, or altered), which
// come back as Redacted: what a handler must treat as a secret it can no
// longer act on.
func (s *Sealer) UnsealEvent(raw []byte) ([]byte, int) {
	unopened := 0
	out, _ := rewriteSecrets(raw, true, func(aad []byte, v any) (any, bool) {
		str, ok := v.(string)
		if !ok || !strings.HasPrefix(str, SealedPrefix) {
			return v, false
		}
		plain, err := s.open(str, aad)
		if err != nil {
			unopened++
			return Redacted, true
		}
		var value any
		dec := json.NewDecoder(bytes.NewReader(plain))
		dec.UseNumber()
		if err := dec.Decode(&value); err != nil {
			unopened++
			return Redacted, true
		}
		return value, true
	})
	return out, unopened
}

func (s *Sealer) open(sealed string, aad []byte) ([]byte, error) {
	if s == nil {
		return nil, errors.New("outbox: no sealing key")
	}
	b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(sealed, SealedPrefix))
	if err != nil || len(b) < s.aead.NonceSize() {
		return nil, errors.New("outbox: not a sealed value")
	}
	n := s.aead.NonceSize()
	return s.aead.Open(nil, b[:n], b[n:], aad)
}

// rewriteSecrets applies fn to the value of each secret field of raw's
// data (fn says whether it replaced it), in the catalog's order, or in
// reverse when unsealing: a sealed field inside a sealed object is then
// opened after its container. The associated data of each value binds it
// to its event and field, so a sealed value copied into another event or
// field does not open.
func rewriteSecrets(raw []byte, reverse bool, fn func(aad []byte, v any) (any, bool)) ([]byte, bool) {
	var env map[string]json.RawMessage
	if json.Unmarshal(raw, &env) != nil {
		return raw, false
	}
	var eventType, id string
	if json.Unmarshal(env["type"], &eventType) != nil {
		return raw, false
	}
	_ = json.Unmarshal(env["id"], &id)
	paths := secretPaths(eventType)
	data := env["data"]
	if len(paths) == 0 || len(data) == 0 || string(data) == "null" {
		return raw, false
	}
	aad := func(path string) []byte { return []byte(id + "\x00" + eventType + "\x00" + path) }
	var obj map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // numbers stay as they were written
	var newData []byte
	if dec.Decode(&obj) != nil || obj == nil {
		// Not an object: the data is the secret, whole.
		var whole any
		wdec := json.NewDecoder(bytes.NewReader(data))
		wdec.UseNumber()
		if wdec.Decode(&whole) != nil {
			whole = string(data)
		}
		v, changed := fn(aad(""), whole)
		if !changed {
			return raw, false
		}
		newData, _ = json.Marshal(v)
	} else {
		if reverse {
			for i, j := 0, len(paths)-1; i < j; i, j = i+1, j-1 {
				paths[i], paths[j] = paths[j], paths[i]
			}
		}
		changed := false
		for _, p := range paths {
			changed = rewritePath(obj, strings.Split(p, "."), func(v any) (any, bool) { return fn(aad(p), v) }) || changed
		}
		if !changed {
			return raw, false
		}
		var err error
		if newData, err = json.Marshal(obj); err != nil {
			return raw, false
		}
	}
	env["data"] = newData
	out, err := json.Marshal(env)
	if err != nil {
		return raw, false
	}
	return out, true
}

// secretPaths lists the dotted paths of eventType's secret fields, in the
// catalog's order.
func secretPaths(eventType string) []string {
	d, ok := Lookup(eventType)
	if !ok {
		return nil
	}
	var out []string
	for _, f := range d.Fields {
		if f.Secret {
			out = append(out, f.Path)
		}
	}
	return out
}

// rewritePath applies fn to the value at path (object keys) if it is
// there and not null.
func rewritePath(obj map[string]any, path []string, fn func(any) (any, bool)) bool {
	v, ok := obj[path[0]]
	if !ok || v == nil {
		return false
	}
	if len(path) > 1 {
		inner, ok := v.(map[string]any)
		return ok && rewritePath(inner, path[1:], fn)
	}
	nv, changed := fn(v)
	if changed {
		obj[path[0]] = nv
	}
	return changed
}
