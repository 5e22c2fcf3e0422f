package token

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/keymint/keymint/vault"
)

// DefaultIssuer is the issuer identifier of a vault that records none (see
// [vault.Settings.Issuer]) when no other is given: the address `keymint
// serve` listens on by default.
const DefaultIssuer = "http://127.0.0.1:8080"

// CheckIssuer validates an issuer identifier (RFC 8414 §2): an absolute
// http or https URL, without user information, query or fragment. It
// returns it without a trailing slash, so that endpoint URLs join cleanly
// and every token of an issuer names it the same way. Its errors wrap
// [ErrInvalidIssuer]. Every issuer keymint mints under or checks tokens
// against goes through it: the server's, the CLI's and the vault's.
func CheckIssuer(s string) (string, error) {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] == 0x7f {
			return "", fmt.Errorf("%q is %w: it has a space or a control character", s, ErrInvalidIssuer)
		}
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return "", fmt.Errorf("%q is %w: it must be an absolute http or https URL", s, ErrInvalidIssuer)
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#") {
		return "", fmt.Errorf("%q is %w: an issuer has no query or fragment (RFC 8414)", s, ErrInvalidIssuer)
	}
	return strings.TrimRight(s, "/"), nil
}

// ActiveContext is what a token is checked against by [CheckActive],
// beyond the key set that verifies its signature.
type ActiveContext struct {
	// Issuer is the issuer identifier the token must name in iss, exactly,
	// as [CheckIssuer] returns it.
	Issuer string
	// Now is the time exp, nbf and iat are checked at.
	Now time.Time
	// Revoked reports whether the token with this jti was revoked. An error
	// is a failed lookup, returned as it is.
	Revoked func(jti string) (bool, error)
	// Client returns the client with this id; an error wrapping
	// [vault.ErrNotFound] when there is none, and any other error when the
	// lookup failed, which is returned as it is.
	Client func(clientID string) (*vault.Client, error)
	// Grant returns the grant of user userID to client clientID if it
	// still stands (the grant exists; its user exists and is not
	// disabled): the authorization a user's token was issued under. An
	// error wrapping [vault.ErrNotFound] when it does not, any other error
	// when the lookup failed, which is returned as it is.
	Grant func(userID, clientID string) (*vault.Grant, error)
}

// CheckActive is the one decision whether token is an active access token
// of ks and want: what `keymint token verify` prints and what /introspect
// answers. A token is active when
//
//   - it is a compact JWS signed by a key of ks, with the algorithm that
//     key is for, and typ at+jwt, carrying every claim RFC 9068 requires
//     ([KeySet.Verify]);
//   - it has not expired at want.Now, and neither iat nor nbf is later than
//     want.Now plus a minute of clock skew;
//   - its iss is want.Issuer;
//   - its jti was not revoked;
//   - its client still exists, has not expired and is not disabled: a
//     client that may no longer get tokens has no active ones either, as
//     removing it says (enabling a disabled client again makes its
//     unexpired tokens active again);
//   - for a token a client got for a user, the user's grant to the client
//     still stands, and was given before the token was issued: revoking
//     the grant, or removing or disabling the user, ends its tokens, and
//     granting again does not bring them back.
//
// It returns the token's claims if so. Otherwise the error wraps the
// reason's sentinel: [ErrMalformedToken], [ErrUnsupportedAlg],
// [ErrUnknownKey], [ErrSignature], [ErrBadType], [ErrMissingClaim],
// [ErrExpired], [ErrNotYetValid], [ErrOtherIssuer], [ErrRevoked],
// [ErrClientRemoved], [ErrClientExpired], [ErrClientDisabled] or
// [ErrGrantRevoked]; see
// [IsInactive]. A failed
// lookup of want.Revoked or want.Client is returned as it is and says
// nothing of the token. No error quotes the token.
func CheckActive(ks *KeySet, token string, want ActiveContext) (Claims, error) {
	if ks == nil || want.Issuer == "" || want.Revoked == nil || want.Client == nil || want.Grant == nil {
		return Claims{}, errors.New("check token: no key set, issuer or lookup to check it against")
	}
	claims, err := ks.Verify(token, want.Now)
	if err != nil {
		return Claims{}, err
	}
	if claims.Issuer != want.Issuer {
		return Claims{}, fmt.Errorf("%w: it names %s, not %s", ErrOtherIssuer, quoteBounded(claims.Issuer), want.Issuer)
	}
	revoked, err := want.Revoked(claims.ID)
	if err != nil {
		return Claims{}, fmt.Errorf("check token %s: revocations: %w", claims.ID, err)
	}
	if revoked {
		return Claims{}, fmt.Errorf("%w: jti %s", ErrRevoked, claims.ID)
	}
	c, err := want.Client(claims.ClientID)
	switch {
	case errors.Is(err, vault.ErrNotFound):
		return Claims{}, fmt.Errorf("%w: %s", ErrClientRemoved, claims.ClientID)
	case err != nil:
		return Claims{}, fmt.Errorf("check token %s: client: %w", claims.ID, err)
	case c.ID != claims.ClientID:
		// A lookup that also takes names found another client by name.
		return Claims{}, fmt.Errorf("%w: %s", ErrClientRemoved, claims.ClientID)
	}
	// The client may still be used, as [Issue] asked when it minted.
	switch err := vault.Usable(vault.KindClient, &c.Credential, nil, want.Now); {
	case errors.Is(err, vault.ErrExpired):
		return Claims{}, fmt.Errorf("%w: the token's client %s", ErrClientExpired, c.ID)
	case errors.Is(err, vault.ErrDisabled):
		return Claims{}, fmt.Errorf("%w: the token's client %s", ErrClientDisabled, c.ID)
	case err != nil:
		return Claims{}, fmt.Errorf("check token %s: client: %w", claims.ID, err)
	}
	if claims.OnBehalfOfUser() {
		g, err := want.Grant(claims.Subject, claims.ClientID)
		switch {
		case errors.Is(err, vault.ErrNotFound):
			return Claims{}, fmt.Errorf("%w: user %s, client %s", ErrGrantRevoked, claims.Subject, claims.ClientID)
		case err != nil:
			return Claims{}, fmt.Errorf("check token %s: grant: %w", claims.ID, err)
		case g.UserID != claims.Subject || g.ClientID != claims.ClientID || g.CreatedAt.Truncate(time.Second).After(claims.IssuedAt):
			// A grant given after the token: the one it was issued under
			// was revoked meanwhile.
			return Claims{}, fmt.Errorf("%w: user %s, client %s (granted again since)", ErrGrantRevoked, claims.Subject, claims.ClientID)
		}
	}
	return claims, nil
}

// inactiveReasons are the errors by which [CheckActive] calls a token
// inactive.
var inactiveReasons = []error{
	ErrMalformedToken, ErrUnsupportedAlg, ErrUnknownKey, ErrSignature, ErrBadType,
	ErrMissingClaim, ErrExpired, ErrNotYetValid, ErrOtherIssuer, ErrRevoked,
	ErrClientRemoved, ErrClientExpired, ErrClientDisabled, ErrGrantRevoked,
}

// IsInactive reports whether err, from [CheckActive], says the token is not
// active, rather than that checking it failed.
func IsInactive(err error) bool {
	for _, reason := range inactiveReasons {
		if errors.Is(err, reason) {
			return true
		}
	}
	return false
}
