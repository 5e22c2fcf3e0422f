// Package resourcetest is, for tests, what a resource server that shares
// no code with keymint knows of its tokens and keys: the claims as
// golang-jwt reads them, and public keys read from JWKS with the standard
// library. The token and server packages' interoperability tests use it.
package resourcetest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// AccessTokenClaims is RFC 9068's claim set as golang-jwt sees it.
type AccessTokenClaims struct {
	jwt.RegisteredClaims
	ClientID string `json:"client_id"`
	Scope    string `json:"scope"`
}

// ParseJWKS reads public keys from JWKS JSON with the standard library, as
// a verifier that knows nothing of go-jose would.
func ParseJWKS(t testing.TB, published []byte) map[string]crypto.PublicKey {
	t.Helper()
	var set struct {
		Keys []struct {
			Kty, Kid, Alg, Use, Crv, X, Y, N, E string
		}
	}
	if err := json.Unmarshal(published, &set); err != nil {
		t.Fatal(err)
	}
	decode := func(s string) []byte {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("JWKS member is not base64url: %v", err)
		}
		return b
	}
	keys := map[string]crypto.PublicKey{}
	for _, k := range set.Keys {
		if k.Use != "sig" || k.Alg == "" || k.Kid == "" {
			t.Errorf("JWK %s: use %q alg %q", k.Kid, k.Use, k.Alg)
		}
		switch {
		case k.Kty == "EC" && k.Crv == "P-256":
			point := append([]byte{4}, append(decode(k.X), decode(k.Y)...)...)
			public, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
			if err != nil {
				t.Fatal(err)
			}
			keys[k.Kid] = public
		case k.Kty == "RSA":
			e := new(big.Int).SetBytes(decode(k.E))
			keys[k.Kid] = &rsa.PublicKey{N: new(big.Int).SetBytes(decode(k.N)), E: int(e.Int64())}
		case k.Kty == "OKP" && k.Crv == "Ed25519":
			keys[k.Kid] = ed25519.PublicKey(decode(k.X))
		default:
			t.Fatalf("unexpected JWK %s: kty %q crv %q", k.Kid, k.Kty, k.Crv)
		}
	}
	return keys
}
