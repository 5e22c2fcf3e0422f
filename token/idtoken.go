package token

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// IDClaims are the claims of an OpenID Connect ID token (OpenID Connect
// Core 1.0 §2), which keymint signs with the vault's active signing key,
// and so with its algorithm, for a client that asked for the openid scope.
type IDClaims struct {
	Issuer    string    // iss
	Subject   string    // sub: the user's id, stable across renames
	Audience  string    // aud: the client_id, the one audience
	IssuedAt  time.Time // iat
	ExpiresAt time.Time // exp
	AuthTime  time.Time // auth_time: when the user signed in
	Nonce     string    // nonce of the authentication request, if it had one
	// AccessTokenHash is at_hash (Core §3.1.3.6), for the access token
	// issued beside it; see [AccessTokenHash].
	AccessTokenHash string
	// Standard claims (Core §5.1), set by the caller from the scopes the
	// user granted (profile: name and preferred_username; email: email).
	Name              string
	PreferredUsername string
	Email             string
}

// idTokenType is the typ of an ID token: plain JWT, so that no verifier
// takes it for an access token (at+jwt), nor the reverse.
const idTokenType = "JWT"

// ErrIDToken is wrapped by a refusal to sign ID token claims that lack a
// claim OpenID Connect requires.
var ErrIDToken = errors.New("incomplete ID token claims")

type wireIDClaims struct {
	Issuer            string `json:"iss"`
	Subject           string `json:"sub"`
	Audience          string `json:"aud"`
	ExpiresAt         int64  `json:"exp"`
	IssuedAt          int64  `json:"iat"`
	AuthTime          int64  `json:"auth_time"`
	Nonce             string `json:"nonce,omitempty"`
	AccessTokenHash   string `json:"at_hash,omitempty"`
	Name              string `json:"name,omitempty"`
	PreferredUsername string `json:"preferred_username,omitempty"`
	Email             string `json:"email,omitempty"`
}

// SignIDToken returns c as a signed compact JWT with typ JWT.
func (s *Signer) SignIDToken(c IDClaims) (string, error) {
	switch {
	case c.Issuer == "" || c.Subject == "" || c.Audience == "":
		return "", fmt.Errorf("sign ID token: %w: iss, sub and aud are required", ErrIDToken)
	case c.IssuedAt.IsZero() || c.AuthTime.IsZero() || !c.ExpiresAt.After(c.IssuedAt):
		return "", fmt.Errorf("sign ID token: %w: iat and auth_time are required, and exp must be after iat", ErrIDToken)
	}
	payload, err := json.Marshal(wireIDClaims{
		Issuer: c.Issuer, Subject: c.Subject, Audience: c.Audience,
		ExpiresAt: c.ExpiresAt.Unix(), IssuedAt: c.IssuedAt.Unix(), AuthTime: c.AuthTime.Unix(),
		Nonce: c.Nonce, AccessTokenHash: c.AccessTokenHash,
		Name: c.Name, PreferredUsername: c.PreferredUsername, Email: c.Email,
	})
	if err != nil {
		return "", fmt.Errorf("sign ID token: %w", err)
	}
	jws, err := s.idSigner.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("sign ID token with key %s: %w", s.keyID, err)
	}
	return jws.CompactSerialize()
}

// AccessTokenHash is the at_hash of accessToken for an ID token signed
// with alg (Core §3.1.3.6): the base64url left half of the hash that alg
// uses, SHA-256 for ES256 and RS256, SHA-512 for RS512 and for EdDSA
// (Ed25519 signs with SHA-512; OpenID's registry of at_hash for EdDSA
// says the same).
func AccessTokenHash(alg Alg, accessToken string) (string, error) {
	var sum []byte
	switch alg {
	case ES256, RS256:
		h := sha256.Sum256([]byte(accessToken))
		sum = h[:]
	case RS512, EdDSA:
		h := sha512.Sum512([]byte(accessToken))
		sum = h[:]
	default:
		return "", fmt.Errorf("at_hash: %w %s", ErrUnsupportedAlg, alg)
	}
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2]), nil
}

// newIDSigner is the JOSE signer of a key's ID tokens: the same key as
// its access tokens, typ JWT.
func newIDSigner(key jose.SigningKey) (jose.Signer, error) {
	return jose.NewSigner(key, (&jose.SignerOptions{}).WithType(idTokenType))
}
