// Package token mints and verifies keymint's access tokens: JWTs per RFC 9068
// (header typ "at+jwt"), signed with ES256 by default, or RS256, RS512 or EdDSA.
// It is the token half of keymint, shared by the CLI (`keymint token issue`,
// `keymint token verify`) and the HTTP server (package server), which builds
// on it; it knows nothing of HTTP.
//
// # Signing keys
//
// A [SigningKey] is a private key in PKCS#8 DER with its algorithm and its key
// id, the RFC 7638 SHA-256 thumbprint of its public JWK. [GenerateSigningKey]
// makes one; [SigningKey.PublicJWK] gives the public half as published in JWKS.
// [FromVault] and [ToVault] convert to and from the vault's stored form.
//
// # Minting
//
// [NewSigner] decodes a signing key once, so that [Signer.Sign] costs one JSON
// encoding and one signature per token, as a token endpoint needs. [NewJTI]
// makes the random token ids. [Issue] is the one way a token is issued, by
// the CLI and the server alike: the client may be used now
// ([vault.Usable]), the claims are decided from what the client allows and
// what a [Request] asks, one use is counted by the caller's counting step,
// and [Mint] signs the claims into the RFC 6749 token [Response], in that
// order. [ActiveSigner] is the signer of a vault's active key.
//
// # Verifying
//
// A [KeySet] holds public keys, built from signing keys ([NewKeySet],
// [PublishedKeySet]) or from a JWKS ([NewKeySetFromJWKs]). [KeySet.Verify]
// accepts a token only when it is signed by one of those keys with the
// algorithm that key is registered for, has typ at+jwt, carries every claim
// RFC 9068 requires, and is valid at the given time. Failures wrap the
// sentinel errors of this package (see [ErrSignature] and its siblings) and
// never quote the token or key material. Verify does not compare iss or aud
// with expected values: that policy belongs to the caller.
//
// [CheckActive] is that policy for keymint's own tokens, the one decision
// whether a token is active: verified, of the expected issuer (see
// [CheckIssuer]), not revoked, and of a client that still exists and has not
// expired.
//
// # What this package does not do
//
// It stores nothing of its own: signing keys reach [Signer] and [KeySet] as
// values and leave them as values; revocations and clients are looked up
// through the functions the caller gives [CheckActive].
package token
