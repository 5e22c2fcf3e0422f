package token

import "slices"

// Grant types (RFC 6749 §4, RFC 7591 §2): the one list of their names, which
// the CLI's client new checks --grant against, the token endpoint and its
// metadata serve, and [ClaimsFor] requires of a client.
const (
	// GrantClientCredentials is a client's own token (RFC 6749 §4.4).
	GrantClientCredentials = "client_credentials"
	// GrantAuthorizationCode is a token a user let a client have, at
	// /authorize (RFC 6749 §4.1, with PKCE); a client with it has
	// redirect URIs.
	GrantAuthorizationCode = "authorization_code"
	// GrantRefreshToken renews a user's token (RFC 6749 §6). It is no
	// grant type a client is given: an authorization_code client has it.
	GrantRefreshToken = "refresh_token"
)

// ClientGrantTypes are the grant types a client may be given, the first
// being the default.
var ClientGrantTypes = []string{GrantClientCredentials, GrantAuthorizationCode}

// SupportedGrantTypes are the grant types the token endpoint serves, as its
// metadata publishes them (grant_types_supported).
var SupportedGrantTypes = []string{GrantClientCredentials, GrantAuthorizationCode, GrantRefreshToken}

// ValidClientGrantType reports whether g is one of [ClientGrantTypes].
func ValidClientGrantType(g string) bool { return slices.Contains(ClientGrantTypes, g) }

// Audiences is the one rule for requested or configured audiences (aud,
// RFC 7519 §4.1.3; the audience parameter of RFC 8693 §2.1 and resource
// indicators of RFC 8707): each value is one audience, a URI or any other
// string, taken whole and never split on commas or spaces. Empty values are
// dropped and a repeated value counts once.
func Audiences(values []string) []string {
	var out []string
	for _, a := range values {
		if a != "" && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}
