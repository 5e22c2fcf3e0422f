package token_test

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/keymint/keymint/internal/resourcetest"
	"github.com/keymint/keymint/token"
)

// idClaims is what golang-jwt reads of an ID token.
type idClaims struct {
	jwt.RegisteredClaims
	AuthTime          int64  `json:"auth_time"`
	Nonce             string `json:"nonce"`
	AtHash            string `json:"at_hash"`
	Name              string `json:"name"`
	PreferredUsername string `json:"preferred_username"`
	Email             string `json:"email"`
}

// TestIDTokenVerifiedByGolangJWT: an ID token of every algorithm passes
// another JWT library's checks with the published keys, with typ JWT (so
// no resource server takes it for an access token), the claims given, and
// an at_hash computed here independently.
func TestIDTokenVerifiedByGolangJWT(t *testing.T) {
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
			published, err := json.Marshal(ks.JWKS())
			if err != nil {
				t.Fatal(err)
			}
			jwks := resourcetest.ParseJWKS(t, published)
			signer, err := token.NewSigner(k)
			if err != nil {
				t.Fatal(err)
			}
			access := "an.access.token"
			atHash, err := token.AccessTokenHash(alg, access)
			if err != nil {
				t.Fatal(err)
			}
			var sum []byte
			if alg == token.ES256 || alg == token.RS256 {
				h := sha256.Sum256([]byte(access))
				sum = h[:16]
			} else {
				h := sha512.Sum512([]byte(access))
				sum = h[:32]
			}
			if want := base64.RawURLEncoding.EncodeToString(sum); atHash != want {
				t.Fatalf("at_hash = %s, want %s", atHash, want)
			}
			want := token.IDClaims{
				Issuer: "https://keymint.test", Subject: "usr_1234567890abcdef", Audience: "cl_webapp",
				IssuedAt: interopNow, ExpiresAt: interopNow.Add(time.Hour), AuthTime: interopNow.Add(-time.Minute),
				Nonce: "n-0S6_WzA2Mj", AccessTokenHash: atHash, Name: "Test User", PreferredUsername: "u1", Email: "u1@example.com",
			}
			idToken, err := signer.SignIDToken(want)
			if err != nil {
				t.Fatal(err)
			}
			var got idClaims
			parser := jwt.NewParser(jwt.WithValidMethods([]string{string(alg)}), jwt.WithTimeFunc(func() time.Time { return interopNow }),
				jwt.WithExpirationRequired(), jwt.WithIssuer(want.Issuer), jwt.WithAudience(want.Audience))
			if _, err := parser.ParseWithClaims(idToken, &got, func(tok *jwt.Token) (any, error) {
				if typ, _ := tok.Header["typ"].(string); typ != "JWT" {
					return nil, errors.New("typ is not JWT")
				}
				kid, _ := tok.Header["kid"].(string)
				return jwks[kid], nil
			}); err != nil {
				t.Fatalf("golang-jwt rejected the ID token: %v", err)
			}
			if got.Subject != want.Subject || got.AuthTime != want.AuthTime.Unix() || got.Nonce != want.Nonce || got.AtHash != atHash ||
				got.Name != want.Name || got.PreferredUsername != want.PreferredUsername || got.Email != want.Email {
				t.Errorf("read %+v, want %+v", got, want)
			}
			// An ID token is no access token.
			if _, err := ks.Verify(idToken, interopNow); !errors.Is(err, token.ErrBadType) {
				t.Errorf("KeySet.Verify(ID token) = %v, want ErrBadType", err)
			}
		})
	}
}

func TestSignIDTokenRefusesIncompleteClaims(t *testing.T) {
	k, err := token.GenerateSigningKey(token.ES256, interopNow)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := token.NewSigner(k)
	if err != nil {
		t.Fatal(err)
	}
	full := token.IDClaims{Issuer: "https://i", Subject: "s", Audience: "a", IssuedAt: interopNow, ExpiresAt: interopNow.Add(time.Minute), AuthTime: interopNow}
	for name, mutate := range map[string]func(*token.IDClaims){
		"no iss":            func(c *token.IDClaims) { c.Issuer = "" },
		"no sub":            func(c *token.IDClaims) { c.Subject = "" },
		"no aud":            func(c *token.IDClaims) { c.Audience = "" },
		"no auth_time":      func(c *token.IDClaims) { c.AuthTime = time.Time{} },
		"exp not after iat": func(c *token.IDClaims) { c.ExpiresAt = c.IssuedAt },
	} {
		c := full
		mutate(&c)
		if _, err := signer.SignIDToken(c); !errors.Is(err, token.ErrIDToken) {
			t.Errorf("%s: SignIDToken = %v, want ErrIDToken", name, err)
		}
	}
	if _, err := signer.SignIDToken(full); err != nil {
		t.Errorf("complete claims: %v", err)
	}
}
