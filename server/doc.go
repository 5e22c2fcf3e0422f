// Package server is the HTTP server of `keymint serve`: keymint's OAuth 2.0
// authorization server for the client_credentials grant, and the API key
// check for gateways. It mints and verifies tokens with package token.
//
// [Server] serves the token endpoint (RFC 6749), discovery (RFC 8414 and
// OpenID Connect), JWKS, introspection (RFC 7662), revocation (RFC 7009),
// GET /verify, which checks an API key for API gateways (nginx
// auth_request, Envoy ext_authz, Traefik forwardAuth), liveness (/healthz),
// readiness (/readyz) and Prometheus metrics (/metrics, from a registry of
// the server's own, [Server.Registry]). The last three are unauthenticated,
// for the internal network: a public reverse proxy should not pass them.
//
// It serves from an in-memory snapshot of a vault that it brings up to date,
// reading only the records that changed, when another process or replica
// changes the vault ([Server.Reload], [Server.Run]: on a change
// notification, [Options.Changes], and by polling); counts each token
// issued and each key accepted as one use against the credential's limits
// (package quota), and answers 503 with Retry-After rather than grant a use
// it cannot count; throttles failed authentication per remote address; and
// writes last_used_at back in group commits ([Server.Flush]).
//
// It reads and writes the vault only through package vault, whose job it is
// to keep records sealed.
package server
