package token

import (
	"crypto/x509"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// FuzzVerify feeds arbitrary strings to Verify. It must never panic; every
// error must wrap a sentinel and must not quote the input; and whatever it
// accepts must carry a header and payload that the set's keys really signed
// (the seeds' genuine tokens), however the encoding around them was varied.
func FuzzVerify(f *testing.F) {
	fx := newFixture(f)
	genuine := map[string]bool{} // header + "." + payload, decoded
	for _, alg := range Algs() {
		c := validClaims()
		if alg == RS512 {
			c.Scope = nil
			c.Audience = []string{"a", "b"}
		}
		token := mustSign(f, fx.signers[alg], c)
		genuine[signedContent(f, token)] = true
		f.Add(token)
	}

	es := fx.keys[ES256]
	valid := mustSign(f, fx.signers[ES256], validClaims())
	parts := strings.Split(valid, ".")
	publicDER, err := x509.MarshalPKIXPublicKey(privateKey(f, es).Public())
	if err != nil {
		f.Fatal(err)
	}
	expired := validClaims()
	expired.IssuedAt, expired.ExpiresAt = testNow.Add(-2*time.Hour), testNow.Add(-time.Hour)
	for _, forged := range []string{
		b64(`{"alg":"none","kid":"`+es.ID+`","typ":"at+jwt"}`) + "." + parts[1] + ".",
		signRaw(f, jose.HS256, publicDER, es.ID, atJWT, payloadOf(f, validClaims())),
		parts[0] + "." + b64(strings.Replace(string(payloadOf(f, validClaims())), "client-ci", "admin", 1)) + "." + parts[2],
		parts[0] + "." + parts[1] + "." + flipChar(parts[2], 10),
		signRaw(f, jose.ES256, privateKey(f, es), es.ID, map[string]any{"typ": "JWT"}, payloadOf(f, validClaims())),
		mustSign(f, fx.signers[EdDSA], expired),
		"", ".", "..", "a.b.c", "e30.e30.", "e30.e30.e30",
	} {
		f.Add(forged)
	}

	f.Fuzz(func(t *testing.T, token string) {
		claims, err := fx.set.Verify(token, testNow)
		if err != nil {
			if !wrapsSentinel(err) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			if len(token) >= 12 && strings.Contains(err.Error(), token) {
				t.Fatalf("error quotes the token: %v", err)
			}
			return
		}
		if !genuine[signedContent(t, token)] {
			t.Fatalf("accepted a token the set's keys did not sign: %q -> %+v", token, claims)
		}
	})
}

// flipChar returns s with its i-th character replaced by a different
// base64url character: a signature that is certainly another one.
func flipChar(s string, i int) string {
	c := byte('A')
	if s[i] == 'A' {
		c = 'B'
	}
	return s[:i] + string(c) + s[i+1:]
}

// signedContent returns the decoded header and payload of a compact token:
// what a signature covers, whatever the spelling of its base64.
func signedContent(t testing.TB, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("accepted token has %d parts", len(parts))
	}
	header, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	payload, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	if err1 != nil || err2 != nil {
		t.Fatalf("accepted token does not decode: %v, %v", err1, err2)
	}
	return string(header) + "." + string(payload)
}
