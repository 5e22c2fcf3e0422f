package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"
)

func TestParseAlg(t *testing.T) {
	tests := []struct {
		in   string
		want Alg
	}{
		{"ES256", ES256},
		{"es256", ES256},
		{"RS256", RS256},
		{"rs512", RS512},
		{"EdDSA", EdDSA},
		{"eddsa", EdDSA},
	}
	for _, tt := range tests {
		got, err := ParseAlg(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseAlg(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "none", "HS256", "ES384", "PS256", "Ed25519", " ES256"} {
		_, err := ParseAlg(bad)
		if !errors.Is(err, ErrUnsupportedAlg) {
			t.Errorf("ParseAlg(%q) error = %v, want ErrUnsupportedAlg", bad, err)
			continue
		}
		if !strings.Contains(err.Error(), "ES256, RS256, RS512, EdDSA") {
			t.Errorf("ParseAlg(%q) error %q does not list the valid algorithms", bad, err)
		}
	}
}

func TestDefaultAlgIsFirst(t *testing.T) {
	if DefaultAlg != ES256 || Algs()[0] != DefaultAlg {
		t.Fatalf("DefaultAlg = %s, Algs()[0] = %s; want ES256 for both", DefaultAlg, Algs()[0])
	}
}

func TestGenerateSigningKey(t *testing.T) {
	for _, alg := range Algs() {
		t.Run(string(alg), func(t *testing.T) {
			k := mustGenerate(t, alg)
			if k.Alg != alg || !k.CreatedAt.Equal(testNow) {
				t.Errorf("got Alg %s CreatedAt %v; want %s %v", k.Alg, k.CreatedAt, alg, testNow)
			}
			private := privateKey(t, k)
			switch key := private.(type) {
			case *ecdsa.PrivateKey:
				if alg != ES256 || key.Curve != elliptic.P256() {
					t.Errorf("%s key is ECDSA %s", alg, key.Curve.Params().Name)
				}
			case *rsa.PrivateKey:
				if (alg != RS256 && alg != RS512) || key.N.BitLen() != 2048 {
					t.Errorf("%s key is RSA %d", alg, key.N.BitLen())
				}
			case ed25519.PrivateKey:
				if alg != EdDSA {
					t.Errorf("%s key is Ed25519", alg)
				}
			default:
				t.Fatalf("%s key has type %T", alg, private)
			}
			if want := independentThumbprint(t, private.Public()); k.ID != want {
				t.Errorf("ID = %s, want RFC 7638 thumbprint %s", k.ID, want)
			}
		})
	}
	if _, err := GenerateSigningKey("HS256", testNow); !errors.Is(err, ErrUnsupportedAlg) {
		t.Errorf("GenerateSigningKey(HS256) error = %v, want ErrUnsupportedAlg", err)
	}
}

func TestGeneratedKeysDiffer(t *testing.T) {
	a, b := mustGenerate(t, ES256), mustGenerate(t, ES256)
	if a.ID == b.ID {
		t.Fatal("two generated keys have the same id")
	}
}

// TestThumbprintRFC7638Example checks thumbprint and the test's own
// independent computation against the example of RFC 7638 §3.1.
func TestThumbprintRFC7638Example(t *testing.T) {
	const (
		n    = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
		want = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
	)
	nBytes, err := base64.RawURLEncoding.DecodeString(n)
	if err != nil {
		t.Fatal(err)
	}
	public := &rsa.PublicKey{N: new(big.Int).SetBytes(nBytes), E: 65537}
	if got, err := thumbprint(public); err != nil || got != want {
		t.Errorf("thumbprint = %q, %v; want %q", got, err, want)
	}
	if got := independentThumbprint(t, public); got != want {
		t.Errorf("independentThumbprint = %q; want %q", got, want)
	}
}

// independentThumbprint computes an RFC 7638 thumbprint by the letter of
// §3.2: the required members only, in lexicographic order, no whitespace,
// hashed with SHA-256. It shares no code with the package.
func independentThumbprint(t *testing.T, public crypto.PublicKey) string {
	t.Helper()
	enc := base64.RawURLEncoding.EncodeToString
	var canonical string
	switch key := public.(type) {
	case *ecdsa.PublicKey:
		ecdhKey, err := key.ECDH()
		if err != nil {
			t.Fatal(err)
		}
		point := ecdhKey.Bytes() // 0x04 || X || Y, each 32 bytes for P-256
		canonical = `{"crv":"P-256","kty":"EC","x":"` + enc(point[1:33]) + `","y":"` + enc(point[33:65]) + `"}`
	case *rsa.PublicKey:
		e := big.NewInt(int64(key.E)).Bytes()
		canonical = `{"e":"` + enc(e) + `","kty":"RSA","n":"` + enc(key.N.Bytes()) + `"}`
	case ed25519.PublicKey:
		canonical = `{"crv":"Ed25519","kty":"OKP","x":"` + enc(key) + `"}`
	default:
		t.Fatalf("no thumbprint for %T", public)
	}
	sum := sha256.Sum256([]byte(canonical))
	return enc(sum[:])
}

func TestPublicJWK(t *testing.T) {
	for _, alg := range Algs() {
		t.Run(string(alg), func(t *testing.T) {
			k := mustGenerate(t, alg)
			jwk, err := k.PublicJWK()
			if err != nil {
				t.Fatal(err)
			}
			if jwk.KeyID != k.ID || jwk.Algorithm != string(alg) || jwk.Use != "sig" || !jwk.IsPublic() {
				t.Errorf("jwk kid %q alg %q use %q public %v", jwk.KeyID, jwk.Algorithm, jwk.Use, jwk.IsPublic())
			}
			raw, err := json.Marshal(jwk)
			if err != nil {
				t.Fatal(err)
			}
			var members map[string]any
			if err := json.Unmarshal(raw, &members); err != nil {
				t.Fatal(err)
			}
			for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
				if _, ok := members[private]; ok {
					t.Errorf("public JWK has private member %q", private)
				}
			}
			if members["kid"] != k.ID || members["alg"] != string(alg) || members["use"] != "sig" {
				t.Errorf("public JWK JSON = %s", raw)
			}
		})
	}
}

// TestDamagedSigningKey checks that a key damaged or mislabelled in storage
// is refused before it signs anything, without echoing key material.
func TestDamagedSigningKey(t *testing.T) {
	es := mustGenerate(t, ES256)
	ed := mustGenerate(t, EdDSA)
	rsaWeak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	weakDER, err := x509.MarshalPKCS8PrivateKey(rsaWeak)
	if err != nil {
		t.Fatal(err)
	}
	weakID, err := thumbprint(rsaWeak.Public())
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384DER, err := x509.MarshalPKCS8PrivateKey(p384)
	if err != nil {
		t.Fatal(err)
	}
	p384ID, err := thumbprint(p384.Public())
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		key  SigningKey
		want error
	}{
		{"id not the thumbprint", SigningKey{ID: ed.ID, Alg: ES256, PrivateKey: es.PrivateKey}, ErrInvalidKey},
		{"empty id", SigningKey{Alg: ES256, PrivateKey: es.PrivateKey}, ErrInvalidKey},
		{"EC key labelled EdDSA", SigningKey{ID: es.ID, Alg: EdDSA, PrivateKey: es.PrivateKey}, ErrInvalidKey},
		{"Ed25519 key labelled RS256", SigningKey{ID: ed.ID, Alg: RS256, PrivateKey: ed.PrivateKey}, ErrInvalidKey},
		{"RSA 1024", SigningKey{ID: weakID, Alg: RS256, PrivateKey: weakDER}, ErrInvalidKey},
		{"P-384 labelled ES256", SigningKey{ID: p384ID, Alg: ES256, PrivateKey: p384DER}, ErrInvalidKey},
		{"truncated DER", SigningKey{ID: es.ID, Alg: ES256, PrivateKey: es.PrivateKey[:20]}, ErrInvalidKey},
		{"no DER", SigningKey{ID: es.ID, Alg: ES256}, ErrInvalidKey},
		{"unknown alg", SigningKey{ID: es.ID, Alg: "ES384", PrivateKey: es.PrivateKey}, ErrUnsupportedAlg},
		{"alg in wrong case", SigningKey{ID: es.ID, Alg: "es256", PrivateKey: es.PrivateKey}, ErrUnsupportedAlg},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewSigner(tt.key)
			if !errors.Is(err, tt.want) {
				t.Fatalf("NewSigner error = %v, want %v", err, tt.want)
			}
			if _, err := tt.key.PublicJWK(); !errors.Is(err, tt.want) {
				t.Errorf("PublicJWK error = %v, want %v", err, tt.want)
			}
			if _, err := NewKeySet([]SigningKey{tt.key}); !errors.Is(err, tt.want) {
				t.Errorf("NewKeySet error = %v, want %v", err, tt.want)
			}
			assertNoKeyMaterial(t, err.Error(), tt.key.PrivateKey)
		})
	}
}

func assertNoKeyMaterial(t *testing.T, msg string, der []byte) {
	t.Helper()
	if len(der) < 16 {
		return
	}
	for _, enc := range []string{
		base64.StdEncoding.EncodeToString(der[:12]),
		base64.RawURLEncoding.EncodeToString(der[:12]),
		string(der[:12]),
	} {
		if strings.Contains(msg, enc) {
			t.Errorf("error message %q contains key material", msg)
		}
	}
}
