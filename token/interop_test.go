package token_test

// Interoperability with a JWT library other than go-jose, so that a bug
// shared by the package and go-jose cannot pass unnoticed. golang-jwt is a
// test-only dependency: only tests and internal/resourcetest, which only
// tests import, use it.

import (
	"crypto"
	"crypto/x509"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/keymint/keymint/internal/resourcetest"
	"github.com/keymint/keymint/token"
)

var interopNow = time.Date(2026, 11, 5, 10, 0, 0, 0, time.UTC)

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
	jwks := resourcetest.ParseJWKS(t, published)

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
			var got resourcetest.AccessTokenClaims
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
				tok := jwt.NewWithClaims(methods[alg], resourcetest.AccessTokenClaims{
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
