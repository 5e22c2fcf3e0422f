// Package server is the HTTP server of `keymint serve`: keymint's OAuth 2.0
// authorization server for the client_credentials grant, and the API key
// check for gateways. It mints and verifies tokens with package token.
//
// [Server] serves the token endpoint (RFC 6749), discovery (RFC 8414 and
// OpenID Connect), JWKS, introspection (RFC 7662), revocation (RFC 7009),
// GET /verify, which checks an API key for API gateways (nginx
// auth_request, Envoy ext_authz, Traefik forwardAuth), and a health check.
//
// It serves from an in-memory snapshot of a vault that it brings up to date,
// reading only the records that changed, when another process changes the
// vault ([Server.Reload], [Server.Run]); counts each token issued and each
// key accepted as one use against the credential's limits (package quota);
// throttles failed authentication per remote address; and writes
// last_used_at back in group commits ([Server.Flush]).
//
// It reads and writes the vault only through package vault, whose job it is
// to keep records sealed.
package server
