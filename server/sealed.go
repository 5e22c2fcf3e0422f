package server

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
)

// The browser side of the authorization-code flow keeps no state in the
// server: the authorization request travels between the pages as a sealed
// value (a hidden form field), and a signed-in user as a sealed cookie.
// Both are sealed under keys derived from one secret the vault provides
// (the same on every replica, and unknown outside the vault), so any
// replica can continue a flow another one started, and nothing in them can
// be read or forged by the browser.

// ErrSealed is wrapped by every refusal to open a sealed value: damaged,
// forged, sealed for another purpose, or expired.
var ErrSealed = errors.New("invalid or expired sealed value")

// sealer seals values of one purpose (flow, session) with an expiry.
type sealer struct {
	purpose string
	aead    cipher.AEAD
	now     func() time.Time
}

// deriveKey derives the 32-byte key of purpose from secret (HKDF-SHA256).
func deriveKey(secret []byte, purpose string) []byte {
	key, err := hkdf.Key(sha256.New, secret, nil, "keymint "+purpose, 32)
	if err != nil {
		panic(err) // only for a length HKDF-SHA256 cannot give
	}
	return key
}

func newSealer(secret []byte, purpose string, now func() time.Time) (*sealer, error) {
	aead, err := chacha20poly1305.NewX(deriveKey(secret, "sealed "+purpose))
	if err != nil {
		return nil, fmt.Errorf("sealer %s: %w", purpose, err)
	}
	return &sealer{purpose: purpose, aead: aead, now: now}, nil
}

// envelope is what is sealed: the value and when it stops being valid.
type envelope struct {
	Expires int64           `json:"exp"`
	Value   json.RawMessage `json:"v"`
}

// seal returns v, valid for ttl, as a base64url string.
func (s *sealer) seal(v any, ttl time.Duration) (string, error) {
	value, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	plain, err := json.Marshal(envelope{Expires: s.now().Add(ttl).Unix(), Value: value})
	if err != nil {
		return "", err
	}
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+16)
	_, _ = rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, plain, []byte(s.purpose))), nil
}

// maxSealed bounds what open decodes: a sealed flow or session is well
// under a kilobyte, and the input comes from the browser.
const maxSealed = 8 << 10

// open decodes a value sealed by seal for the same purpose, not expired.
func (s *sealer) open(sealed string, v any) error {
	if len(sealed) > maxSealed {
		return fmt.Errorf("%w: too long", ErrSealed)
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(sealed)
	if err != nil || len(raw) < s.aead.NonceSize() {
		return fmt.Errorf("%w: not a sealed value", ErrSealed)
	}
	plain, err := s.aead.Open(nil, raw[:s.aead.NonceSize()], raw[s.aead.NonceSize():], []byte(s.purpose))
	if err != nil {
		return fmt.Errorf("%w: not sealed here for %s", ErrSealed, s.purpose)
	}
	var e envelope
	if err := json.Unmarshal(plain, &e); err != nil {
		return fmt.Errorf("%w: %w", ErrSealed, err)
	}
	if s.now().Unix() >= e.Expires {
		return fmt.Errorf("%w: expired", ErrSealed)
	}
	if err := json.Unmarshal(e.Value, v); err != nil {
		return fmt.Errorf("%w: %w", ErrSealed, err)
	}
	return nil
}

// csrfToken binds a form to the browser that got it: an HMAC, under a
// key of its own, of the browser's binding (a random value in a cookie
// only this server sets) and the sealed flow the form carries, so a token
// taken from one browser or one flow is worthless in another.
func csrfToken(key []byte, binding, flow string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(binding))
	m.Write([]byte{0})
	m.Write([]byte(flow))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkCSRF compares a form's token with the one expected, in constant
// time.
func checkCSRF(key []byte, binding, flow, got string) bool {
	if binding == "" || got == "" {
		return false
	}
	return hmac.Equal([]byte(csrfToken(key, binding, flow)), []byte(got))
}
