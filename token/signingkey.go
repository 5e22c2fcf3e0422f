package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Alg is a JWS signature algorithm that keymint signs with.
type Alg string

// The algorithms keymint signs with. The names are the JOSE "alg" values.
const (
	ES256 Alg = "ES256" // ECDSA P-256 with SHA-256: the default
	RS256 Alg = "RS256" // RSASSA-PKCS1-v1_5 with SHA-256, for verifiers without EC
	RS512 Alg = "RS512" // RSASSA-PKCS1-v1_5 with SHA-512
	EdDSA Alg = "EdDSA" // Ed25519

	// DefaultAlg is ES256: small keys and signatures, fast, and accepted by
	// every JOSE library that resource servers use.
	DefaultAlg = ES256
)

// rsaKeyBits is the size of generated RSA keys, and the least accepted.
const rsaKeyBits = 2048

// Algs returns the supported algorithms, the default first.
func Algs() []Alg {
	return []Alg{ES256, RS256, RS512, EdDSA}
}

// ParseAlg returns the algorithm named s. JOSE names are case-sensitive, but
// people type "es256" or "eddsa", and no two supported names differ only in
// case, so the match ignores case.
func ParseAlg(s string) (Alg, error) {
	names := make([]string, 0, len(Algs()))
	for _, alg := range Algs() {
		if strings.EqualFold(s, string(alg)) {
			return alg, nil
		}
		names = append(names, string(alg))
	}
	return "", fmt.Errorf("%w %q; use one of %s", ErrUnsupportedAlg, s, strings.Join(names, ", "))
}

// supported reports whether a is exactly one of [Algs]; unlike [ParseAlg] it
// does not fold case, since values reaching it come from code and storage.
func (a Alg) supported() bool {
	switch a {
	case ES256, RS256, RS512, EdDSA:
		return true
	}
	return false
}

// SigningKey is a private key that signs access tokens. It is a plain value so
// that the vault can seal and store it; this package never keeps one.
type SigningKey struct {
	// ID is the key id ("kid"): the RFC 7638 SHA-256 thumbprint of the public
	// JWK, base64url without padding. Being derived from the key, it cannot
	// name two different keys, and any verifier can recompute it.
	ID         string
	Alg        Alg
	PrivateKey []byte // PKCS#8 DER
	CreatedAt  time.Time
}

// GenerateSigningKey makes a new key for alg: P-256 for ES256, RSA 2048 for
// RS256 and RS512, Ed25519 for EdDSA. now becomes its CreatedAt.
func GenerateSigningKey(alg Alg, now time.Time) (SigningKey, error) {
	if !alg.supported() {
		return SigningKey{}, fmt.Errorf("generate signing key: %w %q", ErrUnsupportedAlg, alg)
	}
	private, err := generatePrivateKey(alg)
	if err != nil {
		return SigningKey{}, fmt.Errorf("generate %s signing key: %w", alg, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(private)
	if err != nil {
		return SigningKey{}, fmt.Errorf("generate %s signing key: encode PKCS#8: %w", alg, err)
	}
	kid, err := thumbprint(private.Public())
	if err != nil {
		return SigningKey{}, fmt.Errorf("generate %s signing key: %w", alg, err)
	}
	return SigningKey{ID: kid, Alg: alg, PrivateKey: der, CreatedAt: now}, nil
}

func generatePrivateKey(alg Alg) (crypto.Signer, error) {
	switch alg {
	case ES256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case RS256, RS512:
		return rsa.GenerateKey(rand.Reader, rsaKeyBits)
	case EdDSA:
		_, private, err := ed25519.GenerateKey(rand.Reader)
		return private, err
	}
	return nil, fmt.Errorf("%w %q", ErrUnsupportedAlg, alg)
}

// PublicJWK returns the public key as a JWK with kid, alg and use "sig", as
// published in JWKS.
func (k SigningKey) PublicJWK() (jose.JSONWebKey, error) {
	private, err := k.decode()
	if err != nil {
		return jose.JSONWebKey{}, err
	}
	return jose.JSONWebKey{
		Key:       private.Public(),
		KeyID:     k.ID,
		Algorithm: string(k.Alg),
		Use:       "sig",
	}, nil
}

// decode parses the private key and checks that it fits Alg and that ID is
// its thumbprint, so that a key damaged or mislabelled in storage fails here
// rather than producing tokens that no verifier accepts.
func (k SigningKey) decode() (crypto.Signer, error) {
	label := k.ID // names the key in errors; the id is public
	if label == "" {
		label = "(no id)"
	}
	if !k.Alg.supported() {
		return nil, fmt.Errorf("signing key %s: %w %q", label, ErrUnsupportedAlg, k.Alg)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(k.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("%w %s: not a PKCS#8 private key: %w", ErrInvalidKey, label, err)
	}
	private, ok := parsed.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w %s: %T cannot sign", ErrInvalidKey, label, parsed)
	}
	if err := checkKeyFitsAlg(private.Public(), k.Alg); err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrInvalidKey, label, err)
	}
	kid, err := thumbprint(private.Public())
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrInvalidKey, label, err)
	}
	if kid != k.ID {
		return nil, fmt.Errorf("%w %s: id is not the key's thumbprint (%s)", ErrInvalidKey, label, kid)
	}
	return private, nil
}

// checkKeyFitsAlg reports whether public is a key alg may be used with. It
// guards both signing and verifying against keys of the wrong kind or size.
func checkKeyFitsAlg(public crypto.PublicKey, alg Alg) error {
	switch key := public.(type) {
	case *ecdsa.PublicKey:
		if alg == ES256 && key.Curve == elliptic.P256() {
			return nil
		}
		return fmt.Errorf("an ECDSA %s key does not fit %s", key.Curve.Params().Name, alg)
	case *rsa.PublicKey:
		if alg != RS256 && alg != RS512 {
			return fmt.Errorf("an RSA key does not fit %s", alg)
		}
		if bits := key.N.BitLen(); bits < rsaKeyBits {
			return fmt.Errorf("RSA key of %d bits is shorter than %d", bits, rsaKeyBits)
		}
		return nil
	case ed25519.PublicKey:
		if alg == EdDSA {
			return nil
		}
		return fmt.Errorf("an Ed25519 key does not fit %s", alg)
	}
	return fmt.Errorf("key type %T is not supported", public)
}

// thumbprint returns the RFC 7638 SHA-256 thumbprint of public, base64url
// without padding: the key id.
func thumbprint(public crypto.PublicKey) (string, error) {
	jwk := jose.JSONWebKey{Key: public}
	sum, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("compute key thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}
