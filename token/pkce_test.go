package token_test

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/keymint/keymint/token"
)

// RFC 7636 Appendix B's example.
const (
	rfcVerifier  = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	rfcChallenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
)

func TestCheckCodeChallenge(t *testing.T) {
	for _, tt := range []struct {
		name, challenge, method string
		ok                      bool
	}{
		{"S256", rfcChallenge, "S256", true},
		{"no challenge", "", "S256", false},
		{"plain", rfcVerifier, "plain", false},
		{"no method (plain by default)", rfcChallenge, "", false},
		{"lowercase method", rfcChallenge, "s256", false},
		{"not base64url", strings.Repeat("+", 43), "S256", false},
		{"padded", rfcChallenge + "=", "S256", false},
		{"too short", rfcChallenge[:42], "S256", false},
		{"too long", rfcChallenge + "AAAA", "S256", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := token.CheckCodeChallenge(tt.challenge, tt.method)
			if (err == nil) != tt.ok || (err != nil && !errors.Is(err, token.ErrPKCE)) {
				t.Errorf("CheckCodeChallenge(%q, %q) = %v, want ok=%v", tt.challenge, tt.method, err, tt.ok)
			}
		})
	}
}

func TestCheckCodeVerifier(t *testing.T) {
	long := strings.Repeat("a", 128)
	sum := sha256.Sum256([]byte(long))
	longChallenge := base64.RawURLEncoding.EncodeToString(sum[:])
	for _, tt := range []struct {
		name, challenge, verifier string
		ok                        bool
	}{
		{"RFC 7636 example", rfcChallenge, rfcVerifier, true},
		{"128 characters", longChallenge, long, true},
		{"wrong verifier", rfcChallenge, strings.Replace(rfcVerifier, "d", "e", 1), false},
		{"verifier sent as the challenge", rfcChallenge, rfcChallenge, false},
		{"too short", rfcChallenge, rfcVerifier[:42], false},
		{"too long", longChallenge, long + "a", false},
		{"reserved character", rfcChallenge, rfcVerifier[:42] + "+", false},
		{"empty", rfcChallenge, "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := token.CheckCodeVerifier(tt.challenge, tt.verifier)
			if (err == nil) != tt.ok || (err != nil && !errors.Is(err, token.ErrPKCE)) {
				t.Errorf("CheckCodeVerifier = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && tt.verifier != "" && strings.Contains(err.Error(), tt.verifier) {
				t.Errorf("error quotes the verifier: %v", err)
			}
		})
	}
}

func FuzzCheckCodeVerifier(f *testing.F) {
	f.Add(rfcChallenge, rfcVerifier)
	f.Add("", "")
	f.Fuzz(func(t *testing.T, challenge, verifier string) {
		if token.CheckCodeVerifier(challenge, verifier) == nil {
			sum := sha256.Sum256([]byte(verifier))
			if base64.RawURLEncoding.EncodeToString(sum[:]) != challenge {
				t.Fatalf("accepted a verifier that does not hash to the challenge")
			}
		}
	})
}
