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
// # What this package does not do
//
// It stores nothing: signing keys reach it as values and leave it as values;
// keeping them sealed is the vault package's job. It has no HTTP endpoint yet;
// the token, JWKS, discovery, introspection and revocation endpoints will live
// in this package, on top of [Signer] and [KeySet].
package issuer
