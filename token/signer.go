package token

import (
	"fmt"

	jose "github.com/go-jose/go-jose/v4"
)

// Signer mints access tokens with one signing key. It is built once per key
// and is safe for concurrent use: decoding the key and setting up the JOSE
// signer stay off the token endpoint's hot path.
type Signer struct {
	keyID    string
	alg      Alg
	signer   jose.Signer // access tokens, typ at+jwt
	idSigner jose.Signer // OpenID Connect ID tokens, typ JWT
}

// NewSigner decodes k and prepares to sign with it. It fails if k is damaged,
// or if its ID is not its thumbprint.
func NewSigner(k SigningKey) (*Signer, error) {
	private, err := k.decode()
	if err != nil {
		return nil, fmt.Errorf("new signer: %w", err)
	}
	// Passing the key as a JWK with its KeyID makes go-jose write the kid
	// header itself; typ marks the token as an access token (RFC 9068 §2.1).
	key := jose.SigningKey{
		Algorithm: jose.SignatureAlgorithm(k.Alg),
		Key:       jose.JSONWebKey{Key: private, KeyID: k.ID, Algorithm: string(k.Alg)},
	}
	signer, err := jose.NewSigner(key, (&jose.SignerOptions{}).WithType(tokenType))
	if err != nil {
		return nil, fmt.Errorf("new signer: %w %s: %w", ErrInvalidKey, k.ID, err)
	}
	idSigner, err := newIDSigner(key)
	if err != nil {
		return nil, fmt.Errorf("new signer: %w %s: %w", ErrInvalidKey, k.ID, err)
	}
	return &Signer{keyID: k.ID, alg: k.Alg, signer: signer, idSigner: idSigner}, nil
}

// KeyID returns the kid of the tokens s signs.
func (s *Signer) KeyID() string { return s.keyID }

// Alg returns the algorithm s signs with.
func (s *Signer) Alg() Alg { return s.alg }

// Sign returns c as a signed compact JWT. c must hold every claim RFC 9068
// requires, exp must be after iat, and each scope must be a single scope token.
func (s *Signer) Sign(c Claims) (string, error) {
	if err := c.checkSignable(); err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	payload, err := c.marshal()
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	jws, err := s.signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("sign token with key %s: %w", s.keyID, err)
	}
	token, err := jws.CompactSerialize()
	if err != nil {
		return "", fmt.Errorf("sign token with key %s: serialize: %w", s.keyID, err)
	}
	return token, nil
}
