// Package issuer mints and verifies keymint's access tokens: JWTs per RFC 9068
// (header typ "at+jwt"), signed with ES256 by default, or RS256, RS512 or EdDSA.
//
// # Signing keys
//
// A [SigningKey] is a private key in PKCS#8 DER with its algorithm and its key
// id, the RFC 7638 SHA-256 thumbprint of its public JWK. [GenerateSigningKey]
// makes one; [SigningKey.PublicJWK] gives the public half as published in JWKS.
//
// # Minting
//
// [NewSigner] decodes a signing key once, so that [Signer.Sign] costs one JSON
// encoding and one signature per token, as a token endpoint needs. [NewJTI]
// makes the random token ids.
//
// # Verifying
//
// A [KeySet] holds public keys, built from signing keys ([NewKeySet]) or from
// a JWKS ([NewKeySetFromJWKs]). [KeySet.Verify] accepts a token only when it is
// signed by one of those keys with the algorithm that key is registered for,
// has typ at+jwt, carries every claim RFC 9068 requires, and is valid at the
// given time. Failures wrap the sentinel errors of this package (see
// [ErrSignature] and its siblings) and never quote the token or key material.
// Verify does not compare iss or aud with expected values: that policy belongs
// to the caller.
//
// # The endpoint
//
// [Server] is the HTTP endpoint of `keymint serve`, on top of [Signer] and
// [KeySet]: the token endpoint for the client_credentials grant (RFC 6749),
// discovery (RFC 8414 and OpenID Connect), JWKS, introspection (RFC 7662),
// revocation (RFC 7009), GET /verify, which checks an API key for API
// gateways (nginx auth_request, Envoy ext_authz, Traefik forwardAuth), and a
// health check. It serves from an in-memory snapshot of a vault that it
// brings up to date, reading only the records that changed, when another
// process changes the vault; counts each token issued and each key accepted
// as one use against the credential's limits (package quota); throttles
// failed authentication; and writes last_used_at back in group commits.
//
// # What this package does not do
//
// It stores nothing of its own: signing keys reach [Signer] and [KeySet] as
// values and leave them as values, and the server reads and writes the vault
// only through package vault, whose job it is to keep records sealed.
package issuer
