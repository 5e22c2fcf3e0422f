package token

import (
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// testNow is the fixed clock of these tests.
var testNow = time.Date(2026, 11, 5, 10, 0, 0, 0, time.UTC)

// validClaims returns claims valid at testNow for one hour.
func validClaims() Claims {
	return Claims{
		Issuer:    "https://keymint.test",
		Subject:   "client-ci",
		Audience:  []string{"https://api.example"},
		IssuedAt:  testNow,
		ExpiresAt: testNow.Add(time.Hour),
		ID:        NewJTI(),
		ClientID:  "client-ci",
		Scope:     []string{"invoices:read", "invoices:write"},
	}
}

func mustGenerate(t testing.TB, alg Alg) SigningKey {
	t.Helper()
	k, err := GenerateSigningKey(alg, testNow)
	if err != nil {
		t.Fatalf("GenerateSigningKey(%s): %v", alg, err)
	}
	return k
}

func mustSigner(t testing.TB, k SigningKey) *Signer {
	t.Helper()
	s, err := NewSigner(k)
	if err != nil {
		t.Fatalf("NewSigner(%s): %v", k.Alg, err)
	}
	return s
}

func mustSign(t testing.TB, s *Signer, c Claims) string {
	t.Helper()
	token, err := s.Sign(c)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return token
}

func mustKeySet(t testing.TB, keys ...SigningKey) *KeySet {
	t.Helper()
	ks, err := NewKeySet(keys)
	if err != nil {
		t.Fatalf("NewKeySet: %v", err)
	}
	return ks
}

// privateKey decodes k with the standard library alone.
func privateKey(t testing.TB, k SigningKey) crypto.Signer {
	t.Helper()
	parsed, err := x509.ParsePKCS8PrivateKey(k.PrivateKey)
	if err != nil {
		t.Fatalf("parse PKCS#8: %v", err)
	}
	return parsed.(crypto.Signer)
}

// fixture holds one key of each algorithm and a set that verifies them all.
type fixture struct {
	keys    map[Alg]SigningKey
	signers map[Alg]*Signer
	set     *KeySet
}

func newFixture(t testing.TB) fixture {
	t.Helper()
	f := fixture{keys: map[Alg]SigningKey{}, signers: map[Alg]*Signer{}}
	var all []SigningKey
	for _, alg := range Algs() {
		k := mustGenerate(t, alg)
		f.keys[alg] = k
		f.signers[alg] = mustSigner(t, k)
		all = append(all, k)
	}
	f.set = mustKeySet(t, all...)
	return f
}

// signRaw signs payload with go-jose directly, bypassing Signer's checks, to
// build tokens Signer refuses to make. key is a private key or a []byte HMAC
// secret; kid, when set, goes in the header with the extra headers.
func signRaw(t testing.TB, alg jose.SignatureAlgorithm, key any, kid string, headers map[string]any, payload []byte) string {
	t.Helper()
	opts := &jose.SignerOptions{}
	for name, v := range headers {
		opts.WithHeader(jose.HeaderKey(name), v)
	}
	if kid != "" {
		opts.WithHeader("kid", kid)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatalf("jose.NewSigner(%s): %v", alg, err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatalf("jose Sign: %v", err)
	}
	token, err := jws.CompactSerialize()
	if err != nil {
		t.Fatalf("CompactSerialize: %v", err)
	}
	return token
}

// payloadOf returns the JSON claims of c as Signer would write them.
func payloadOf(t testing.TB, c Claims) []byte {
	t.Helper()
	payload, err := c.marshal()
	if err != nil {
		t.Fatal(err)
	}
	return payload
}

// rawPayload marshals an arbitrary claims object.
func rawPayload(t testing.TB, claims map[string]any) []byte {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return payload
}

// decodeSegment decodes part i (0 header, 1 payload) of a compact token into
// a map, keeping numbers as json.Number.
func decodeSegment(t testing.TB, token string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatalf("decode segment %d: %v", i, err)
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("segment %d is not a JSON object: %v", i, err)
	}
	return m
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// sentinels are every error Verify may wrap.
var sentinels = []error{
	ErrUnsupportedAlg, ErrMalformedToken, ErrUnknownKey, ErrSignature,
	ErrBadType, ErrMissingClaim, ErrExpired, ErrNotYetValid,
}

func wrapsSentinel(err error) bool {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}
