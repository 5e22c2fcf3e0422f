package token_test

// Interoperability with a JWT library other than go-jose, so that a bug
// shared by the package and go-jose cannot pass unnoticed. golang-jwt is a
// test-only dependency: nothing outside _test.go files imports it.

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"slices"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/keymint/keymint/token"
)

var interopNow = time.Date(2026, 11, 5, 10, 0, 0, 0, time.UTC)

// accessTokenClaims is RFC 9068's claim set as golang-jwt sees it.
type accessTokenClaims struct {
	jwt.RegisteredClaims
	ClientID string `json:"client_id"`
	Scope    string `json:"scope"`
}

func interopClaims() token.Claims {
	return token.Claims{
		Issuer:    "https://keymint.test",
		Subject:   "client-ci",
		Audience:  []string{"https://api.example"},
		IssuedAt:  interopNow,
		ExpiresAt: interopNow.Add(time.Hour),
		ID:        token.NewJTI(),
		ClientID:  "client-ci",
		Scope:     []string{"invoices:read", "invoices:write"},
	}
}

// TestGolangJWTVerifiesIssuedTokens: a resource server using golang-jwt,
// with keys read from the published JWKS by the standard library alone,
// accepts keymint's tokens in every algorithm.
func TestGolangJWTVerifiesIssuedTokens(t *testing.T) {
	var keys []token.SigningKey
	for _, alg := range token.Algs() {
		k, err := token.GenerateSigningKey(alg, interopNow)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	ks, err := token.NewKeySet(keys)
	if err != nil {
		t.Fatal(err)
	}
	published, err := json.Marshal(ks.JWKS())
	if err != nil {
		t.Fatal(err)
	}
	jwks := parseJWKS(t, published)

	for _, k := range keys {
		t.Run(string(k.Alg), func(t *testing.T) {
			signer, err := token.NewSigner(k)
			if err != nil {
				t.Fatal(err)
			}
			want := interopClaims()
			token, err := signer.Sign(want)
			if err != nil {
				t.Fatal(err)
			}

			parser := jwt.NewParser(
				jwt.WithValidMethods([]string{string(k.Alg)}),
				jwt.WithTimeFunc(func() time.Time { return interopNow }),
				jwt.WithExpirationRequired(),
				jwt.WithIssuedAt(),
				jwt.WithIssuer(want.Issuer),
				jwt.WithAudience(want.Audience[0]),
				jwt.WithStrictDecoding(),
			)
			var got accessTokenClaims
			parsed, err := parser.ParseWithClaims(token, &got, func(tok *jwt.Token) (any, error) {
				if typ, _ := tok.Header["typ"].(string); typ != "at+jwt" {
					return nil, errors.New("typ is not at+jwt")
				}
				kid, _ := tok.Header["kid"].(string)
				if key, ok := jwks[kid]; ok {
					return key, nil
				}
				return nil, errors.New("unknown kid")
			})
			if err != nil {
				t.Fatalf("golang-jwt rejected the token: %v", err)
			}
			if parsed.Header["kid"] != k.ID {
				t.Errorf("kid = %v, want %s", parsed.Header["kid"], k.ID)
			}
			if got.Subject != want.Subject || got.ID != want.ID || got.ClientID != want.ClientID ||
				got.Scope != "invoices:read invoices:write" ||
				!got.IssuedAt.Equal(want.IssuedAt) || !got.ExpiresAt.Equal(want.ExpiresAt) ||
				!slices.Equal(got.Audience, want.Audience) {
				t.Errorf("golang-jwt read %+v, want %+v", got, want)
			}
		})
	}
}

// TestKeySetVerifiesGolangJWTTokens: tokens golang-jwt signs with keymint's
// keys pass Verify, and so does its array form of a single aud; without typ
// at+jwt they are refused.
func TestKeySetVerifiesGolangJWTTokens(t *testing.T) {
	methods := map[token.Alg]jwt.SigningMethod{
		token.ES256: jwt.SigningMethodES256,
		token.RS256: jwt.SigningMethodRS256,
		token.RS512: jwt.SigningMethodRS512,
		token.EdDSA: jwt.SigningMethodEdDSA,
	}
	for _, alg := range token.Algs() {
		t.Run(string(alg), func(t *testing.T) {
			k, err := token.GenerateSigningKey(alg, interopNow)
			if err != nil {
				t.Fatal(err)
			}
			ks, err := token.NewKeySet([]token.SigningKey{k})
			if err != nil {
				t.Fatal(err)
			}
			private, err := x509.ParsePKCS8PrivateKey(k.PrivateKey)
			if err != nil {
				t.Fatal(err)
			}
			sign := func(typ string) string {
				tok := jwt.NewWithClaims(methods[alg], accessTokenClaims{
					RegisteredClaims: jwt.RegisteredClaims{
						Issuer:    "https://keymint.test",
						Subject:   "client-ci",
						Audience:  jwt.ClaimStrings{"https://api.example"}, // written as an array
						IssuedAt:  jwt.NewNumericDate(interopNow),
						ExpiresAt: jwt.NewNumericDate(interopNow.Add(time.Hour)),
						ID:        token.NewJTI(),
					},
					ClientID: "client-ci",
					Scope:    "a b",
				})
				tok.Header["typ"] = typ
				tok.Header["kid"] = k.ID
				signed, err := tok.SignedString(private.(crypto.Signer))
				if err != nil {
					t.Fatal(err)
				}
				return signed
			}

			claims, err := ks.Verify(sign("at+jwt"), interopNow)
			if err != nil {
				t.Fatalf("Verify rejected golang-jwt's token: %v", err)
			}
			if !slices.Equal(claims.Scope, []string{"a", "b"}) || !slices.Equal(claims.Audience, []string{"https://api.example"}) {
				t.Errorf("claims = %+v", claims)
			}
			if _, err := ks.Verify(sign("JWT"), interopNow); !errors.Is(err, token.ErrBadType) {
				t.Errorf("typ JWT: error = %v, want ErrBadType", err)
			}
		})
	}
}

// parseJWKS reads public keys from JWKS JSON with the standard library, as
// a verifier that knows nothing of go-jose would.
func parseJWKS(t *testing.T, published []byte) map[string]crypto.PublicKey {
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
