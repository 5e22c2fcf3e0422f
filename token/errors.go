package token

import "errors"

// Sentinel errors. Functions of this package wrap them with %w and add
// context; test for them with [errors.Is]. No message ever contains a token or
// key material, so callers may log them as they are.
var (
	// ErrUnsupportedAlg reports an algorithm that is not one of [Algs], or that
	// a key set holds no key for, or that differs from the one its key is for.
	ErrUnsupportedAlg = errors.New("unsupported signing algorithm")

	// ErrInvalidKey reports a signing key or JWK that cannot be used: bad
	// encoding, a key type that does not fit its algorithm, a key id that is
	// not the key's thumbprint, private material where a public key belongs.
	ErrInvalidKey = errors.New("invalid signing key")

	// ErrInvalidClaims reports claims that cannot be signed as they are.
	ErrInvalidClaims = errors.New("invalid claims")

	// ErrMalformedToken reports a token that is not a well-formed compact JWS
	// carrying a JSON claims object.
	ErrMalformedToken = errors.New("malformed token")

	// ErrUnknownKey reports a token whose kid names no key of the key set.
	ErrUnknownKey = errors.New("token signed by an unknown key")

	// ErrSignature reports a signature that does not verify.
	ErrSignature = errors.New("invalid token signature")

	// ErrBadType reports a token whose typ header is not at+jwt, that is, a
	// JWT that is not an access token (an ID token, say) and must not be
	// accepted as one.
	ErrBadType = errors.New("token is not an access token")

	// ErrMissingClaim reports claims without one that RFC 9068 requires.
	ErrMissingClaim = errors.New("missing required claim")

	// ErrExpired reports a token whose exp is not after the verification time.
	ErrExpired = errors.New("token expired")

	// ErrNotYetValid reports a token issued (iat) or valid from (nbf) later
	// than the verification time plus the allowed clock skew.
	ErrNotYetValid = errors.New("token not yet valid")

	// ErrOtherIssuer reports an authentic token whose iss is not the issuer
	// it was checked for (see [CheckActive]).
	ErrOtherIssuer = errors.New("token is of another issuer")

	// ErrRevoked reports a token whose jti was revoked.
	ErrRevoked = errors.New("token was revoked")

	// ErrClientRemoved reports a token whose client no longer exists.
	ErrClientRemoved = errors.New("token's client no longer exists")

	// ErrInvalidIssuer reports an issuer identifier that is not an absolute
	// http or https URL without query or fragment (RFC 8414 §2); see
	// [CheckIssuer].
	ErrInvalidIssuer = errors.New("not a valid issuer identifier")
)

// Errors of a token request, each mapping to an RFC 6749 §5.2 error code.
var (
	ErrInvalidScope       = errors.New("requested scope is not allowed for this client")
	ErrUnauthorizedClient = errors.New("client may not use this grant type")
	ErrInvalidRequest     = errors.New("invalid token request")
	// ErrClientExpired reports, from [CheckActive], a token whose client
	// has expired. ([Issue] refuses an expired client with the vault's
	// [vault.ExpiredError].)
	ErrClientExpired = errors.New("client has expired")
	// ErrClientDisabled reports, from [CheckActive], a token whose client
	// is disabled. ([Issue] refuses a disabled client with the vault's
	// [vault.DisabledError].)
	ErrClientDisabled = errors.New("client is disabled")
	// ErrGrantRevoked reports, from [CheckActive], a token a client got for
	// a user whose grant no longer stands: revoked, or its user removed
	// or disabled.
	ErrGrantRevoked = errors.New("the user's grant to the client was revoked")
)
