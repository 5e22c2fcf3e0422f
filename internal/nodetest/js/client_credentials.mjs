// A confidential client as a Node.js application writes it with
// openid-client v6: discovery from the issuer URL, the client_credentials
// grant, and the access token verified as a resource server would, with
// jose against the issuer's JWKS (RFC 9068: typ at+jwt).
//
// Environment: ISSUER, CLIENT_ID, CLIENT_SECRET, SCOPE (optional), and
// CLIENT_AUTH: "basic" for client_secret_basic, else openid-client's
// default (client_secret_post). Prints one JSON line: what was discovered,
// the token response, and the verified token's header and claims; or, when
// the token endpoint refuses, {"error", "status", "challenge"}: the OAuth
// error code, the HTTP status, and the WWW-Authenticate scheme if any (a
// 401 with a challenge is openid-client's WWWAuthenticateChallengeError,
// whose response body still holds the error).
import * as client from 'openid-client';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { env, out } from './lib.mjs';

const issuer = new URL(env('ISSUER'));
const secret = env('CLIENT_SECRET');
const auth = process.env.CLIENT_AUTH === 'basic' ? client.ClientSecretBasic(secret) : undefined;
// keymint serve listens on http://127.0.0.1 in tests; openid-client
// refuses plain http unless told.
const config = await client.discovery(issuer, env('CLIENT_ID'), secret, auth, {
  execute: [client.allowInsecureRequests],
});
const metadata = config.serverMetadata();

const params = process.env.SCOPE ? { scope: process.env.SCOPE } : {};
let tokens;
try {
  tokens = await client.clientCredentialsGrant(config, params);
} catch (e) {
  if (e instanceof client.ResponseBodyError) {
    out({ error: e.error, status: e.status });
  } else if (e instanceof client.WWWAuthenticateChallengeError) {
    const body = await e.response.json();
    out({ error: body.error, status: e.status, challenge: e.cause[0]?.scheme });
  } else {
    throw e;
  }
  process.exit(0);
}

const jwks = createRemoteJWKSet(new URL(metadata.jwks_uri));
const { payload, protectedHeader } = await jwtVerify(tokens.access_token, jwks, {
  issuer: metadata.issuer,
  typ: 'at+jwt',
});

out({
  metadata: {
    issuer: metadata.issuer,
    token_endpoint: metadata.token_endpoint,
    jwks_uri: metadata.jwks_uri,
  },
  token: {
    token_type: tokens.token_type,
    expires_in: tokens.expiresIn(),
    scope: tokens.scope,
  },
  header: protectedHeader,
  claims: payload,
});
