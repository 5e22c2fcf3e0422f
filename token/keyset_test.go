package token

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

var atJWT = map[string]any{"typ": "at+jwt"}

// TestVerify runs genuine, altered and forged tokens through Verify. Every
// rejection must wrap the expected sentinel and must not quote the token.
func TestVerify(t *testing.T) {
	f := newFixture(t)
	es, rs256, rs512, ed := f.keys[ES256], f.keys[RS256], f.keys[RS512], f.keys[EdDSA]
	genuine := mustSign(t, f.signers[ES256], validClaims())
	parts := strings.Split(genuine, ".")
	attacker, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	// signedBy signs payload with a real key of the set, with typ at+jwt
	// unless headers say otherwise: claims and header checks then face a
	// valid signature.
	signedBy := func(k SigningKey, headers map[string]any, payload []byte) string {
		if headers == nil {
			headers = atJWT
		}
		return signRaw(t, jose.SignatureAlgorithm(k.Alg), privateKey(t, k), k.ID, headers, payload)
	}
	withClaims := func(modify func(*Claims)) []byte {
		c := validClaims()
		modify(&c)
		return payloadOf(t, c)
	}
	withoutClaim := func(name string) []byte {
		var claims map[string]any
		if err := json.Unmarshal(payloadOf(t, validClaims()), &claims); err != nil {
			t.Fatal(err)
		}
		delete(claims, name)
		return rawPayload(t, claims)
	}
	unsigned := func(alg string) string {
		header := `{"alg":"` + alg + `","kid":"` + es.ID + `","typ":"at+jwt"}`
		return b64(header) + "." + parts[1] + "."
	}
	// hmacWith forges an HS256 token keyed with public material, the
	// classic confusion of verifiers that let the token pick the algorithm.
	hmacWith := func(k SigningKey, secret []byte) string {
		return signRaw(t, jose.HS256, secret, k.ID, atJWT, payloadOf(t, validClaims()))
	}
	publicDER := func(k SigningKey) []byte {
		der, err := x509.MarshalPKIXPublicKey(privateKey(t, k).Public())
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	publicJWKJSON := func(k SigningKey) []byte {
		jwk, err := k.PublicJWK()
		if err != nil {
			t.Fatal(err)
		}
		raw, err := json.Marshal(jwk)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	flipSignatureBit := func(token string) string {
		p := strings.Split(token, ".")
		sig, err := base64.RawURLEncoding.DecodeString(p[2])
		if err != nil {
			t.Fatal(err)
		}
		sig[len(sig)/2] ^= 0x01
		return p[0] + "." + p[1] + "." + base64.RawURLEncoding.EncodeToString(sig)
	}
	attackerJWK := jose.JSONWebKey{Key: attacker.Public()}

	tests := []struct {
		name  string
		token string
		want  error // nil: accepted
	}{
		{"genuine ES256", genuine, nil},
		{"genuine RS256", mustSign(t, f.signers[RS256], validClaims()), nil},
		{"genuine RS512", mustSign(t, f.signers[RS512], validClaims()), nil},
		{"genuine EdDSA", mustSign(t, f.signers[EdDSA], validClaims()), nil},

		// The algorithm is the key's, not the token's to choose.
		{"alg none", unsigned("none"), ErrUnsupportedAlg},
		{"alg None", unsigned("None"), ErrUnsupportedAlg},
		{"alg NONE", unsigned("NONE"), ErrUnsupportedAlg},
		{"alg none keeping a real signature", unsigned("none") + parts[2], ErrUnsupportedAlg},
		{"alg empty", unsigned(""), ErrUnsupportedAlg},
		{"HS256 keyed with the EC public key DER", hmacWith(es, publicDER(es)), ErrUnsupportedAlg},
		{"HS256 keyed with the EC public key PEM", hmacWith(es, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: publicDER(es)})), ErrUnsupportedAlg},
		{"HS256 keyed with the EC public JWK", hmacWith(es, publicJWKJSON(es)), ErrUnsupportedAlg},
		{"HS256 keyed with the RSA public key DER", hmacWith(rs256, publicDER(rs256)), ErrUnsupportedAlg},
		{"HS256 keyed with the RSA PKCS#1 public key", hmacWith(rs256, x509.MarshalPKCS1PublicKey(privateKey(t, rs256).Public().(*rsa.PublicKey))), ErrUnsupportedAlg},
		{"HS256 keyed with the raw Ed25519 public key", hmacWith(ed, privateKey(t, ed).Public().(ed25519.PublicKey)), ErrUnsupportedAlg},
		{"HS256 keyed with the kid", hmacWith(es, []byte(es.ID)), ErrUnsupportedAlg},
		{"RS512 signature under the RS256 key's kid", signRaw(t, jose.RS512, privateKey(t, rs256), rs256.ID, atJWT, payloadOf(t, validClaims())), ErrUnsupportedAlg},
		{"RS256 signature under the RS512 key's kid", signRaw(t, jose.RS256, privateKey(t, rs512), rs512.ID, atJWT, payloadOf(t, validClaims())), ErrUnsupportedAlg},
		{"ES384 token", signRaw(t, jose.ES384, mustP384(t), es.ID, atJWT, payloadOf(t, validClaims())), ErrUnsupportedAlg},

		// Alterations of a genuine token.
		{"tampered payload", parts[0] + "." + b64(strings.Replace(string(payloadOf(t, validClaims())), "invoices:read", "admin", 1)) + "." + parts[2], ErrSignature},
		{"payload of another genuine token", parts[0] + "." + strings.Split(mustSign(t, f.signers[ES256], validClaims()), ".")[1] + "." + parts[2], ErrSignature},
		{"tampered signature", flipSignatureBit(genuine), ErrSignature},
		{"tampered RSA signature", flipSignatureBit(mustSign(t, f.signers[RS256], validClaims())), ErrSignature},
		{"tampered EdDSA signature", flipSignatureBit(mustSign(t, f.signers[EdDSA], validClaims())), ErrSignature},
		{"truncated signature", genuine[:len(genuine)-4], ErrSignature},
		{"empty signature", parts[0] + "." + parts[1] + ".", ErrSignature},
		{"tampered header", b64(`{"alg":"ES256","kid":"`+es.ID+`","typ":"AT+JWT"}`) + "." + parts[1] + "." + parts[2], ErrSignature},

		// Keys the set does not hold.
		{"attacker's key under our kid", signRaw(t, jose.ES256, attacker, es.ID, atJWT, payloadOf(t, validClaims())), ErrSignature},
		{"attacker's key embedded as jwk under our kid", signRaw(t, jose.ES256, attacker, es.ID, map[string]any{"typ": "at+jwt", "jwk": attackerJWK}, payloadOf(t, validClaims())), ErrSignature},
		{"unknown kid", signRaw(t, jose.ES256, attacker, "attacker-key", atJWT, payloadOf(t, validClaims())), ErrUnknownKey},
		{"no kid", signRaw(t, jose.ES256, privateKey(t, es), "", atJWT, payloadOf(t, validClaims())), ErrUnknownKey},
		{"no kid, attacker's jwk embedded", signRaw(t, jose.ES256, attacker, "", map[string]any{"typ": "at+jwt", "jwk": attackerJWK}, payloadOf(t, validClaims())), ErrUnknownKey},

		// typ, checked once the signature holds.
		{"typ AT+JWT", signedBy(es, map[string]any{"typ": "AT+JWT"}, payloadOf(t, validClaims())), nil},
		{"typ application/at+jwt", signedBy(es, map[string]any{"typ": "application/at+jwt"}, payloadOf(t, validClaims())), nil},
		{"typ Application/At+Jwt", signedBy(es, map[string]any{"typ": "Application/At+Jwt"}, payloadOf(t, validClaims())), nil},
		{"typ JWT", signedBy(es, map[string]any{"typ": "JWT"}, payloadOf(t, validClaims())), ErrBadType},
		{"typ missing", signedBy(es, map[string]any{"cty": "at+jwt"}, payloadOf(t, validClaims())), ErrBadType},
		{"typ with a parameter", signedBy(es, map[string]any{"typ": "at+jwt; v=1"}, payloadOf(t, validClaims())), ErrBadType},
		{"typ not a string", signedBy(es, map[string]any{"typ": 1}, payloadOf(t, validClaims())), ErrBadType},
		{"typ of an ID token", signedBy(es, map[string]any{"typ": "id_token+jwt"}, payloadOf(t, validClaims())), ErrBadType},
		{"unknown critical header", signedBy(es, map[string]any{"typ": "at+jwt", "crit": []string{"x-must"}, "x-must": 1}, payloadOf(t, validClaims())), ErrSignature},

		// Times, against testNow.
		{"exp is now", signedBy(es, nil, withClaims(func(c *Claims) { c.ExpiresAt = testNow })), ErrExpired},
		{"exp a second ago", signedBy(es, nil, withClaims(func(c *Claims) { c.IssuedAt, c.ExpiresAt = testNow.Add(-time.Hour), testNow.Add(-time.Second) })), ErrExpired},
		{"exp in a second", signedBy(es, nil, withClaims(func(c *Claims) { c.ExpiresAt = testNow.Add(time.Second) })), nil},
		{"iat a minute ahead", signedBy(es, nil, withClaims(func(c *Claims) { c.IssuedAt = testNow.Add(time.Minute) })), nil},
		{"iat a minute and a second ahead", signedBy(es, nil, withClaims(func(c *Claims) { c.IssuedAt = testNow.Add(time.Minute + time.Second) })), ErrNotYetValid},
		{"nbf ahead beyond the skew", signedBy(es, nil, addClaim(t, payloadOf(t, validClaims()), "nbf", testNow.Add(2*time.Minute).Unix())), ErrNotYetValid},
		{"nbf ahead within the skew", signedBy(es, nil, addClaim(t, payloadOf(t, validClaims()), "nbf", testNow.Add(30*time.Second).Unix())), nil},

		// Required claims (RFC 9068 §2.2); scope is optional.
		{"no iss", signedBy(es, nil, withoutClaim("iss")), ErrMissingClaim},
		{"no sub", signedBy(es, nil, withoutClaim("sub")), ErrMissingClaim},
		{"no aud", signedBy(es, nil, withoutClaim("aud")), ErrMissingClaim},
		{"no exp", signedBy(es, nil, withoutClaim("exp")), ErrMissingClaim},
		{"no iat", signedBy(es, nil, withoutClaim("iat")), ErrMissingClaim},
		{"no jti", signedBy(es, nil, withoutClaim("jti")), ErrMissingClaim},
		{"no client_id", signedBy(es, nil, withoutClaim("client_id")), ErrMissingClaim},
		{"no scope", signedBy(es, nil, withoutClaim("scope")), nil},
		{"aud an empty array", signedBy(es, nil, addClaim(t, payloadOf(t, validClaims()), "aud", []string{})), ErrMissingClaim},

		// Payloads that are signed but not claims.
		{"payload not JSON", signedBy(es, nil, []byte("not json")), ErrMalformedToken},
		{"payload a JSON array", signedBy(es, nil, []byte(`["iss"]`)), ErrMalformedToken},
		{"aud a number", signedBy(es, nil, addClaim(t, payloadOf(t, validClaims()), "aud", 7)), ErrMalformedToken},
		{"exp a string", signedBy(es, nil, addClaim(t, payloadOf(t, validClaims()), "exp", "tomorrow")), ErrMalformedToken},
		{"exp absurdly far", signedBy(es, nil, addClaim(t, payloadOf(t, validClaims()), "exp", 1e300)), ErrMalformedToken},

		// Input that is not a compact JWS at all.
		{"empty", "", ErrMalformedToken},
		{"one part", "abc", ErrMalformedToken},
		{"two parts", parts[0] + "." + parts[1], ErrMalformedToken},
		{"four parts", genuine + ".x", ErrMalformedToken},
		{"trailing newline", genuine + "\n", ErrMalformedToken},
		{"newline inside", genuine[:20] + "\n" + genuine[20:], ErrMalformedToken},
		{"Bearer prefix", "Bearer " + genuine, ErrMalformedToken},
		{"padding", parts[0] + "=." + parts[1] + "." + parts[2], ErrMalformedToken},
		{"standard base64 alphabet", genuine[:len(genuine)-1] + "+", ErrMalformedToken},
		{"too long", parts[0] + "." + strings.Repeat("A", maxTokenLen) + "." + parts[2], ErrMalformedToken},
		{"header not base64", "A." + parts[1] + "." + parts[2], ErrMalformedToken},
		{"header not JSON", b64("not json") + "." + parts[1] + "." + parts[2], ErrMalformedToken},
		{"kid not a string", b64(`{"alg":"ES256","kid":7,"typ":"at+jwt"}`) + "." + parts[1] + "." + parts[2], ErrMalformedToken},
		{"JWS JSON serialization", `{"payload":"` + parts[1] + `","protected":"` + parts[0] + `","signature":"` + parts[2] + `"}`, ErrMalformedToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			claims, err := f.set.Verify(tt.token, testNow)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify rejected a valid token: %v", err)
				}
				if claims.ClientID != "client-ci" {
					t.Errorf("claims = %+v", claims)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify error = %v, want %v", err, tt.want)
			}
			if claims.Subject != "" || claims.ID != "" {
				t.Errorf("Verify returned claims with its error: %+v", claims)
			}
			assertNoTokenText(t, err, tt.token)
			t.Logf("rejected: %v", err)
		})
	}
}

// assertNoTokenText fails if err quotes any segment of token long enough to
// matter (the short ones, like "{}", can't be told from ordinary words).
func assertNoTokenText(t *testing.T, err error, token string) {
	t.Helper()
	for _, part := range strings.Split(token, ".") {
		if len(part) >= 12 && strings.Contains(err.Error(), part) {
			t.Errorf("error %q quotes token text", err)
		}
	}
}

func addClaim(t *testing.T, payload []byte, name string, value any) []byte {
	t.Helper()
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	claims[name] = value
	return rawPayload(t, claims)
}

func mustP384(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestVerifyAlgorithmNotInSet(t *testing.T) {
	f := newFixture(t)
	onlyEd := mustKeySet(t, f.keys[EdDSA])
	token := mustSign(t, f.signers[ES256], validClaims())
	_, err := onlyEd.Verify(token, testNow)
	if !errors.Is(err, ErrUnsupportedAlg) {
		t.Fatalf("Verify error = %v, want ErrUnsupportedAlg", err)
	}
	if !strings.Contains(err.Error(), "token uses ES256; this key set accepts EdDSA") {
		t.Errorf("error %q does not say which algorithms are involved", err)
	}
}

// TestKeyRotation: a set holding the new key and the retired one accepts
// tokens of both; once the retired key leaves the set, its tokens fail.
func TestKeyRotation(t *testing.T) {
	retired, current := mustGenerate(t, ES256), mustGenerate(t, EdDSA)
	oldToken := mustSign(t, mustSigner(t, retired), validClaims())
	newToken := mustSign(t, mustSigner(t, current), validClaims())

	both := mustKeySet(t, current, retired)
	for _, token := range []string{oldToken, newToken} {
		if _, err := both.Verify(token, testNow); err != nil {
			t.Errorf("set with both keys: %v", err)
		}
	}
	onlyCurrent := mustKeySet(t, current, mustGenerate(t, ES256))
	if _, err := onlyCurrent.Verify(oldToken, testNow); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("retired key's token: error = %v, want ErrUnknownKey", err)
	} else if strings.Contains(err.Error(), retired.ID) {
		// The kid is unverified input: a forger could put a secret there,
		// and the server logs this error.
		t.Errorf("error %q quotes the token's unverified kid", err)
	}
}

// TestJWKSRoundTrip publishes a set as JSON, reads it back as a verifier
// would, and verifies with the copy.
func TestJWKSRoundTrip(t *testing.T) {
	f := newFixture(t)
	published, err := json.Marshal(f.set.JWKS())
	if err != nil {
		t.Fatal(err)
	}
	for _, private := range []string{`"d"`, `"p"`, `"q"`} {
		if strings.Contains(string(published), private) {
			t.Fatalf("JWKS has private member %s: %s", private, published)
		}
	}
	var fetched jose.JSONWebKeySet
	if err := json.Unmarshal(published, &fetched); err != nil {
		t.Fatal(err)
	}
	if len(fetched.Keys) != len(Algs()) {
		t.Fatalf("JWKS has %d keys, want %d", len(fetched.Keys), len(Algs()))
	}
	copySet, err := NewKeySetFromJWKs(fetched.Keys)
	if err != nil {
		t.Fatalf("NewKeySetFromJWKs: %v", err)
	}
	for i, alg := range Algs() {
		if fetched.Keys[i].KeyID != f.keys[alg].ID {
			t.Errorf("JWKS key %d is %s, want %s in the order given", i, fetched.Keys[i].KeyID, f.keys[alg].ID)
		}
		if _, err := copySet.Verify(mustSign(t, f.signers[alg], validClaims()), testNow); err != nil {
			t.Errorf("%s: %v", alg, err)
		}
	}
}

func TestJWKSIsACopy(t *testing.T) {
	ks := mustKeySet(t, mustGenerate(t, ES256))
	jwks := ks.JWKS()
	jwks.Keys[0].KeyID = "changed"
	if ks.JWKS().Keys[0].KeyID == "changed" {
		t.Fatal("changing the returned JWKS changed the key set")
	}
}

func TestNewKeySetFromJWKsRejects(t *testing.T) {
	es, ed := mustGenerate(t, ES256), mustGenerate(t, EdDSA)
	public := func(k SigningKey) jose.JSONWebKey {
		jwk, err := k.PublicJWK()
		if err != nil {
			t.Fatal(err)
		}
		return jwk
	}
	with := func(k SigningKey, modify func(*jose.JSONWebKey)) jose.JSONWebKey {
		jwk := public(k)
		modify(&jwk)
		return jwk
	}
	weakRSA, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		jwks []jose.JSONWebKey
	}{
		{"no keys", nil},
		{"no kid", []jose.JSONWebKey{with(es, func(j *jose.JSONWebKey) { j.KeyID = "" })}},
		{"duplicate kid", []jose.JSONWebKey{public(es), with(ed, func(j *jose.JSONWebKey) { j.KeyID = es.ID })}},
		{"private key", []jose.JSONWebKey{with(es, func(j *jose.JSONWebKey) { j.Key = privateKey(t, es) })}},
		{"HMAC secret", []jose.JSONWebKey{with(es, func(j *jose.JSONWebKey) { j.Key = []byte("0123456789abcdef0123456789abcdef"); j.Algorithm = "HS256" })}},
		{"no key", []jose.JSONWebKey{with(es, func(j *jose.JSONWebKey) { j.Key = nil })}},
		{"use enc", []jose.JSONWebKey{with(es, func(j *jose.JSONWebKey) { j.Use = "enc" })}},
		{"no alg", []jose.JSONWebKey{with(es, func(j *jose.JSONWebKey) { j.Algorithm = "" })}},
		{"alg none", []jose.JSONWebKey{with(es, func(j *jose.JSONWebKey) { j.Algorithm = "none" })}},
		{"EC key with alg RS256", []jose.JSONWebKey{with(es, func(j *jose.JSONWebKey) { j.Algorithm = "RS256" })}},
		{"Ed25519 key with alg ES256", []jose.JSONWebKey{with(ed, func(j *jose.JSONWebKey) { j.Algorithm = "ES256" })}},
		{"P-384 key with alg ES256", []jose.JSONWebKey{{Key: mustP384(t).Public(), KeyID: "p384", Algorithm: "ES256"}}},
		{"RSA 1024", []jose.JSONWebKey{{Key: weakRSA.Public(), KeyID: "weak", Algorithm: "RS256"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewKeySetFromJWKs(tt.jwks); !errors.Is(err, ErrInvalidKey) {
				t.Fatalf("NewKeySetFromJWKs error = %v, want ErrInvalidKey", err)
			}
		})
	}
	// A JWK with no use at all is common in published sets and fine.
	if _, err := NewKeySetFromJWKs([]jose.JSONWebKey{with(es, func(j *jose.JSONWebKey) { j.Use = "" })}); err != nil {
		t.Errorf("JWK without use: %v", err)
	}
}
