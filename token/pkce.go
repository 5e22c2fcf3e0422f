package token

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
)

// PKCE (RFC 7636), the one place keymint decides it: S256 only, for every
// client, as RFC 9700 §2.1.1 recommends; plain is refused, since it gives
// nothing against an attacker who sees the authorization request.

// CodeChallengeS256 is the only code_challenge_method keymint accepts, and
// the one its metadata lists.
const CodeChallengeS256 = "S256"

// ErrPKCE is wrapped by every refusal of a code challenge or verifier.
var ErrPKCE = errors.New("invalid PKCE")

// CheckCodeChallenge validates the code_challenge and
// code_challenge_method of an authorization request: the method must be
// S256, and the challenge a base64url SHA-256 (43 characters, no padding).
func CheckCodeChallenge(challenge, method string) error {
	switch {
	case challenge == "":
		return fmt.Errorf("%w: code_challenge is required (S256)", ErrPKCE)
	case method == "plain":
		return fmt.Errorf("%w: code_challenge_method plain is not allowed; use S256", ErrPKCE)
	case method != CodeChallengeS256:
		return fmt.Errorf("%w: code_challenge_method must be S256", ErrPKCE)
	}
	sum, err := base64.RawURLEncoding.DecodeString(challenge)
	if err != nil || len(sum) != sha256.Size {
		return fmt.Errorf("%w: code_challenge is not a base64url SHA-256", ErrPKCE)
	}
	return nil
}

// CheckCodeVerifier reports whether verifier, from a token request,
// matches challenge, from the authorization request (RFC 7636 §4.6). A
// verifier is 43 to 128 unreserved characters (§4.1). The comparison is
// in constant time.
func CheckCodeVerifier(challenge, verifier string) error {
	if len(verifier) < 43 || len(verifier) > 128 {
		return fmt.Errorf("%w: code_verifier must be 43 to 128 characters", ErrPKCE)
	}
	for i := 0; i < len(verifier); i++ {
		if !unreserved(verifier[i]) {
			return fmt.Errorf("%w: code_verifier has a character outside A-Z a-z 0-9 - . _ ~", ErrPKCE)
		}
	}
	sum := sha256.Sum256([]byte(verifier))
	want := base64.RawURLEncoding.EncodeToString(sum[:])
	if subtle.ConstantTimeCompare([]byte(want), []byte(challenge)) != 1 {
		return fmt.Errorf("%w: code_verifier does not match the code_challenge", ErrPKCE)
	}
	return nil
}

// unreserved reports whether c is an unreserved character of RFC 3986.
func unreserved(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}
