package token

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
)

// tokenType is the typ header of an RFC 9068 access token. Verifiers also
// accept it with the "application/" prefix and in any case (RFC 7515 §4.1.9).
const tokenType = "at+jwt"

// Claims are the claims of an access token (RFC 9068 §2.2).
type Claims struct {
	Issuer    string    // iss
	Subject   string    // sub
	Audience  []string  // aud: a JSON string when one value, an array when several
	IssuedAt  time.Time // iat, whole seconds on the wire
	ExpiresAt time.Time // exp, whole seconds on the wire
	ID        string    // jti, see [NewJTI]
	ClientID  string    // client_id
	Scope     []string  // scope: one space-separated string on the wire
	// AuthTime is when the user signed in (auth_time, RFC 9068 §2.2.1), for
	// a token issued to a client on a user's behalf; zero for a client's
	// own (client_credentials) token.
	AuthTime time.Time
}

// OnBehalfOfUser reports whether c is a token a client got for a user (by
// the authorization-code or refresh grant): its subject is the user, not
// the client.
func (c Claims) OnBehalfOfUser() bool { return c.Subject != c.ClientID }

// wireClaims is the JSON form of [Claims]. The registered claims come from
// go-jose's jwt.Claims, which already writes aud as RFC 7519 allows and times
// as NumericDate.
type wireClaims struct {
	jwt.Claims
	ClientID string `json:"client_id,omitempty"`
	Scope    string `json:"scope,omitempty"`
	AuthTime int64  `json:"auth_time,omitempty"`
}

func (c Claims) marshal() ([]byte, error) {
	payload, err := json.Marshal(wireClaims{
		Claims: jwt.Claims{
			Issuer:   c.Issuer,
			Subject:  c.Subject,
			Audience: jwt.Audience(c.Audience),
			IssuedAt: jwt.NewNumericDate(c.IssuedAt),
			Expiry:   jwt.NewNumericDate(c.ExpiresAt),
			ID:       c.ID,
		},
		ClientID: c.ClientID,
		Scope:    strings.Join(c.Scope, " "),
		AuthTime: unixOrZero(c.AuthTime),
	})
	if err != nil {
		return nil, fmt.Errorf("encode claims: %w", err)
	}
	return payload, nil
}

// unmarshalClaims decodes a verified payload. It also returns nbf, which
// keymint does not mint but must honour when another issuer sets it.
func unmarshalClaims(payload []byte) (c Claims, notBefore time.Time, err error) {
	var wire wireClaims
	if err := json.Unmarshal(payload, &wire); err != nil {
		return Claims{}, time.Time{}, fmt.Errorf("%w: claims: %w", ErrMalformedToken, err)
	}
	c = Claims{
		Issuer:    wire.Issuer,
		Subject:   wire.Subject,
		Audience:  []string(wire.Audience),
		IssuedAt:  numericTime(wire.IssuedAt),
		ExpiresAt: numericTime(wire.Expiry),
		ID:        wire.ID,
		ClientID:  wire.ClientID,
	}
	if wire.AuthTime != 0 {
		c.AuthTime = time.Unix(wire.AuthTime, 0).UTC()
	}
	if scope := strings.Fields(wire.Scope); len(scope) > 0 { // no scope stays nil
		c.Scope = scope
	}
	return c, numericTime(wire.NotBefore), nil
}

// unixOrZero is t in seconds, or 0 (left out) for the zero time.
func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// numericTime converts an optional NumericDate, keeping absent as the zero
// time and giving present values in UTC so that results do not depend on the
// machine's zone.
func numericTime(d *jwt.NumericDate) time.Time {
	if d == nil {
		return time.Time{}
	}
	return d.Time().UTC()
}

// missingClaims names the claims RFC 9068 §2.2 requires that c lacks.
func (c Claims) missingClaims() []string {
	var missing []string
	add := func(absent bool, name string) {
		if absent {
			missing = append(missing, name)
		}
	}
	add(c.Issuer == "", "iss")
	add(c.Subject == "", "sub")
	add(len(c.Audience) == 0 || containsEmpty(c.Audience), "aud")
	add(c.IssuedAt.IsZero(), "iat")
	add(c.ExpiresAt.IsZero(), "exp")
	add(c.ID == "", "jti")
	add(c.ClientID == "", "client_id")
	return missing
}

func containsEmpty(values []string) bool {
	for _, v := range values {
		if v == "" {
			return true
		}
	}
	return false
}

// checkSignable rejects claims that would make a token no verifier accepts,
// or whose scope would not survive the trip through one string.
func (c Claims) checkSignable() error {
	if missing := c.missingClaims(); len(missing) > 0 {
		return fmt.Errorf("%w: %w: %s", ErrInvalidClaims, ErrMissingClaim, strings.Join(missing, ", "))
	}
	if !c.ExpiresAt.Truncate(time.Second).After(c.IssuedAt.Truncate(time.Second)) {
		return fmt.Errorf("%w: exp must be at least a second after iat", ErrInvalidClaims)
	}
	for _, s := range c.Scope {
		if !ValidScope(s) {
			return fmt.Errorf("%w: scope %q is not an OAuth scope token (RFC 6749 §3.3)", ErrInvalidClaims, s)
		}
	}
	return nil
}

// ValidScope reports whether s is one scope as RFC 6749 §3.3 defines a
// scope-token: printable ASCII except space, double quote and backslash.
// [Signer.Sign] signs no other, and the token endpoint accepts no other in a
// request.
func ValidScope(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b < 0x21 || b > 0x7e || b == '"' || b == '\\' {
			return false
		}
	}
	return true
}

// NewJTI returns a new token id: 128 random bits, base64url without padding,
// enough that ids never collide and cannot be guessed.
func NewJTI() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails; it crashes the program instead
	return base64.RawURLEncoding.EncodeToString(b[:])
}
