package token

import (
	"crypto"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// clockSkew is how far in the future iat and nbf may be, to tolerate clocks
// that are slightly apart between issuer and verifier.
const clockSkew = time.Minute

// maxTokenLen bounds the input Verify parses. keymint's tokens are under 2 KiB
// even with RS512 and many scopes; the bound keeps hostile input cheap.
const maxTokenLen = 16 << 10

// KeySet verifies access tokens against a fixed set of public keys, such as
// the current signing key and the retired ones whose tokens may still be
// live. It is immutable and safe for concurrent use.
type KeySet struct {
	keys map[string]verificationKey // by kid
	// algs lists the algorithms of keys, which are the only ones the JWS
	// parser is allowed to accept: this is what rejects "none" and HMAC
	// tokens forged with a public key as the secret.
	algs []jose.SignatureAlgorithm
	jwks []jose.JSONWebKey // in the order given, as published
}

type verificationKey struct {
	alg    Alg
	public crypto.PublicKey
}

// NewKeySet returns the set of the public halves of keys.
func NewKeySet(keys []SigningKey) (*KeySet, error) {
	jwks := make([]jose.JSONWebKey, 0, len(keys))
	for _, k := range keys {
		jwk, err := k.PublicJWK()
		if err != nil {
			return nil, fmt.Errorf("new key set: %w", err)
		}
		jwks = append(jwks, jwk)
	}
	return NewKeySetFromJWKs(jwks)
}

// NewKeySetFromJWKs returns the set of public keys jwks, as found in a JWKS.
// Each must be public, have a kid unique in the set, an alg among [Algs] that
// fits its key, and use "sig" or no use.
func NewKeySetFromJWKs(jwks []jose.JSONWebKey) (*KeySet, error) {
	if len(jwks) == 0 {
		return nil, fmt.Errorf("new key set: %w: no keys", ErrInvalidKey)
	}
	ks := &KeySet{
		keys: make(map[string]verificationKey, len(jwks)),
		jwks: make([]jose.JSONWebKey, 0, len(jwks)),
	}
	for i, jwk := range jwks {
		key, err := checkVerificationJWK(jwk)
		if err != nil {
			return nil, fmt.Errorf("new key set: key %d: %w", i, err)
		}
		if _, dup := ks.keys[jwk.KeyID]; dup {
			return nil, fmt.Errorf("new key set: key %d: %w: kid %s appears twice", i, ErrInvalidKey, jwk.KeyID)
		}
		ks.keys[jwk.KeyID] = key
		ks.jwks = append(ks.jwks, jwk)
		if alg := jose.SignatureAlgorithm(key.alg); !slices.Contains(ks.algs, alg) {
			ks.algs = append(ks.algs, alg)
		}
	}
	return ks, nil
}

func checkVerificationJWK(jwk jose.JSONWebKey) (verificationKey, error) {
	if jwk.KeyID == "" {
		return verificationKey{}, fmt.Errorf("%w: no kid", ErrInvalidKey)
	}
	// A private key here would be published by JWKS: refuse rather than strip
	// it, since passing one is a mistake worth hearing about.
	if !jwk.Valid() || !jwk.IsPublic() {
		return verificationKey{}, fmt.Errorf("%w %s: not a valid public key", ErrInvalidKey, jwk.KeyID)
	}
	if jwk.Use != "" && jwk.Use != "sig" {
		return verificationKey{}, fmt.Errorf("%w %s: use is %q, not sig", ErrInvalidKey, jwk.KeyID, jwk.Use)
	}
	// Binding each key to one algorithm, rather than trusting the token's alg
	// header, is what RFC 8725 §3.1 asks of verifiers.
	alg := Alg(jwk.Algorithm)
	if !alg.supported() {
		return verificationKey{}, fmt.Errorf("%w %s: alg %q: %w", ErrInvalidKey, jwk.KeyID, jwk.Algorithm, ErrUnsupportedAlg)
	}
	if err := checkKeyFitsAlg(jwk.Key, alg); err != nil {
		return verificationKey{}, fmt.Errorf("%w %s: %w", ErrInvalidKey, jwk.KeyID, err)
	}
	return verificationKey{alg: alg, public: jwk.Key}, nil
}

// JWKS returns the public keys as a JSON Web Key Set, for /jwks.json.
func (ks *KeySet) JWKS() jose.JSONWebKeySet {
	return jose.JSONWebKeySet{Keys: slices.Clone(ks.jwks)}
}

// Algs returns the algorithms of the set's keys, each once, in the order
// of the keys that first use them: the only ones [KeySet.Verify] accepts.
func (ks *KeySet) Algs() []Alg {
	algs := make([]Alg, len(ks.algs))
	for i, alg := range ks.algs {
		algs[i] = Alg(alg)
	}
	return algs
}

// Verify checks token as an access token at time now and returns its claims.
// It does not compare iss or aud with expected values; the caller does.
func (ks *KeySet) Verify(token string, now time.Time) (Claims, error) {
	if err := checkCompactForm(token); err != nil {
		return Claims{}, err
	}
	jws, err := jose.ParseSignedCompact(token, ks.algs)
	if err != nil {
		return Claims{}, ks.parseError(err)
	}
	// Compact serialization carries exactly one signature.
	header := jws.Signatures[0].Header
	key, err := ks.keyFor(header)
	if err != nil {
		return Claims{}, err
	}
	payload, err := jws.Verify(key.public)
	if err != nil {
		return Claims{}, fmt.Errorf("%w (key %s): %w", ErrSignature, header.KeyID, err)
	}
	// From here on the header and payload are authentic.
	if err := checkType(header); err != nil {
		return Claims{}, err
	}
	claims, notBefore, err := unmarshalClaims(payload)
	if err != nil {
		return Claims{}, err
	}
	if missing := claims.missingClaims(); len(missing) > 0 {
		return Claims{}, fmt.Errorf("%w: %s", ErrMissingClaim, strings.Join(missing, ", "))
	}
	if err := checkTimes(claims, notBefore, now); err != nil {
		return Claims{}, err
	}
	return claims, nil
}

// checkCompactForm rejects, before any decoding, input that cannot be a
// compact JWS: empty, oversized, not three base64url parts. It also keeps
// out whitespace, which Go's base64 decoder would otherwise skip.
func checkCompactForm(token string) error {
	switch {
	case token == "":
		return fmt.Errorf("%w: empty", ErrMalformedToken)
	case len(token) > maxTokenLen:
		return fmt.Errorf("%w: longer than %d bytes", ErrMalformedToken, maxTokenLen)
	case strings.Count(token, ".") != 2:
		return fmt.Errorf("%w: not three dot-separated parts", ErrMalformedToken)
	}
	for i := 0; i < len(token); i++ {
		if !isBase64URLOrDot(token[i]) {
			return fmt.Errorf("%w: character outside base64url at offset %d", ErrMalformedToken, i)
		}
	}
	return nil
}

func isBase64URLOrDot(b byte) bool {
	return 'A' <= b && b <= 'Z' || 'a' <= b && b <= 'z' || '0' <= b && b <= '9' ||
		b == '-' || b == '_' || b == '.'
}

// parseError classifies a go-jose parse error. Its text is dropped on
// purpose: go-jose quotes header values in some messages, and ours must not
// carry token text.
func (ks *KeySet) parseError(err error) error {
	var unexpected *jose.ErrUnexpectedSignatureAlgorithm
	if errors.As(err, &unexpected) {
		return fmt.Errorf("%w: token uses %s; this key set accepts %s",
			ErrUnsupportedAlg, describeAlg(unexpected.Got), ks.algNames())
	}
	return fmt.Errorf("%w: header or segments do not decode as a JWS", ErrMalformedToken)
}

func (ks *KeySet) algNames() string {
	names := make([]string, len(ks.algs))
	for i, alg := range ks.algs {
		names[i] = string(alg)
	}
	return strings.Join(names, ", ")
}

// describeAlg names a registered JWS algorithm and nothing else, since the
// value comes from an unverified header.
func describeAlg(alg jose.SignatureAlgorithm) string {
	switch alg {
	case "none", jose.HS256, jose.HS384, jose.HS512, jose.RS256, jose.RS384, jose.RS512,
		jose.ES256, jose.ES384, jose.ES512, jose.PS256, jose.PS384, jose.PS512, jose.EdDSA:
		return string(alg)
	}
	return "an unregistered algorithm"
}

// keyFor finds the key named by the header's kid and checks that the header's
// alg is the one that key is for.
func (ks *KeySet) keyFor(header jose.Header) (verificationKey, error) {
	if header.KeyID == "" {
		return verificationKey{}, fmt.Errorf("%w: token has no kid", ErrUnknownKey)
	}
	key, ok := ks.keys[header.KeyID]
	if !ok {
		// kid is unverified input, never quoted: a forger could put a secret
		// there, and /introspect and /revoke log this error.
		return verificationKey{}, fmt.Errorf("%w: the token's kid names no key of this issuer", ErrUnknownKey)
	}
	if header.Algorithm != string(key.alg) {
		return verificationKey{}, fmt.Errorf("%w: token uses %s but key %s is for %s",
			ErrUnsupportedAlg, header.Algorithm, header.KeyID, key.alg)
	}
	return key, nil
}

// checkType accepts the typ of an access token, in any case and with or
// without the "application/" prefix (RFC 7515 §4.1.9, RFC 9068 §4).
func checkType(header jose.Header) error {
	value, present := header.ExtraHeaders[jose.HeaderType]
	if !present {
		return fmt.Errorf("%w: no typ header, want %s", ErrBadType, tokenType)
	}
	typ, isString := value.(string)
	if !isString {
		return fmt.Errorf("%w: typ is not a string, want %s", ErrBadType, tokenType)
	}
	if lower := strings.ToLower(typ); lower == tokenType || lower == "application/"+tokenType {
		return nil
	}
	return fmt.Errorf("%w: typ is %s, want %s", ErrBadType, quoteBounded(typ), tokenType)
}

// quoteBounded quotes s, cut to a length that fits any typ keymint makes.
// Only values of an authentic header are quoted: an unverified one may be
// anything a forger chose, a secret included.
func quoteBounded(s string) string {
	const limit = 64
	if len(s) > limit {
		return fmt.Sprintf("%q...", s[:limit])
	}
	return fmt.Sprintf("%q", s)
}

// checkTimes checks exp, iat and nbf against now. exp gets no leeway: an
// expired token is refused the second it expires.
func checkTimes(c Claims, notBefore, now time.Time) error {
	if !c.ExpiresAt.After(now) {
		return fmt.Errorf("%w at %s", ErrExpired, c.ExpiresAt.Format(time.RFC3339))
	}
	latest := now.Add(clockSkew)
	if c.IssuedAt.After(latest) {
		return fmt.Errorf("%w: issued at %s, in the future", ErrNotYetValid, c.IssuedAt.Format(time.RFC3339))
	}
	if notBefore.After(latest) {
		return fmt.Errorf("%w: valid from %s", ErrNotYetValid, notBefore.Format(time.RFC3339))
	}
	return nil
}
