// A web application signing a user in with openid-client v6 (the
// authorization-code flow with PKCE, OpenID Connect), in the steps a real
// one takes across requests; the Go test drives the browser in between.
//
// Environment: STEP, ISSUER, CLIENT_ID, CLIENT_SECRET (empty or unset for a
// public client, which authenticates with none: PKCE alone), and per step:
//
//   STEP=authorize  REDIRECT_URI, SCOPE. Discovery, a PKCE verifier
//                   (randomPKCECodeVerifier) and its S256 challenge, state
//                   and nonce, and the authorization URL. Prints {url,
//                   code_verifier, state, nonce, metadata}: what the
//                   application keeps in its session.
//   STEP=exchange   CALLBACK_URL (where the browser landed), CODE_VERIFIER,
//                   STATE, NONCE, MAX_AGE. authorizationCodeGrant (which
//                   checks state, iss and the ID token's claims: iss, aud,
//                   exp, iat, nonce, auth_time against max_age), the ID
//                   token's signature verified with jose against the JWKS,
//                   fetchUserInfo, then refreshTokenGrant. Prints {tokens,
//                   claims, id_header, userinfo, refreshed}.
//   STEP=refresh    REFRESH_TOKEN. refreshTokenGrant. Prints {tokens} or,
//                   refused, {error, status}.
//
// Every URL is http://127.0.0.1: openid-client refuses plain http unless
// told (allowInsecureRequests).
import * as client from 'openid-client';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { env, out } from './lib.mjs';

const step = env('STEP');
const secret = process.env.CLIENT_SECRET || undefined;
const auth = secret ? client.ClientSecretBasic(secret) : client.None();
const config = await client.discovery(new URL(env('ISSUER')), env('CLIENT_ID'), secret, auth, {
  execute: [client.allowInsecureRequests],
});
const metadata = config.serverMetadata();

// tokenSummary is what the Go test checks of a token response.
function tokenSummary(t) {
  return {
    access_token: t.access_token,
    refresh_token: t.refresh_token,
    token_type: t.token_type,
    expires_in: t.expiresIn(),
    scope: t.scope,
    has_id_token: typeof t.id_token === 'string',
  };
}

// refused prints an OAuth error response as {error, status} and exits 0;
// anything else is thrown.
function refused(e) {
  if (e instanceof client.ResponseBodyError) {
    out({ error: e.error, status: e.status, error_description: e.error_description });
    process.exit(0);
  }
  throw e;
}

switch (step) {
  case 'authorize': {
    const codeVerifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const params = {
      redirect_uri: env('REDIRECT_URI'),
      scope: env('SCOPE'),
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    };
    if (process.env.MAX_AGE) params.max_age = process.env.MAX_AGE;
    const url = client.buildAuthorizationUrl(config, params);
    out({
      url: url.href,
      code_verifier: codeVerifier,
      state,
      nonce,
      metadata: {
        issuer: metadata.issuer,
        authorization_endpoint: metadata.authorization_endpoint,
        token_endpoint_auth_methods_supported: metadata.token_endpoint_auth_methods_supported,
        code_challenge_methods_supported: metadata.code_challenge_methods_supported,
        authorization_response_iss_parameter_supported: metadata.authorization_response_iss_parameter_supported,
      },
    });
    break;
  }

  case 'exchange': {
    let tokens;
    try {
      tokens = await client.authorizationCodeGrant(config, new URL(env('CALLBACK_URL')), {
        pkceCodeVerifier: env('CODE_VERIFIER'),
        expectedState: env('STATE'),
        expectedNonce: env('NONCE'),
        maxAge: Number(env('MAX_AGE')),
        idTokenExpected: true,
      });
    } catch (e) {
      refused(e);
    }
    const claims = tokens.claims();
    // openid-client checks the ID token's claims; its signature is the
    // JWKS's to prove, as a client that got it other than straight from
    // the token endpoint must.
    const { protectedHeader } = await jwtVerify(tokens.id_token, createRemoteJWKSet(new URL(metadata.jwks_uri)), {
      issuer: metadata.issuer,
      audience: config.clientMetadata().client_id,
    });
    const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
    let refreshed;
    try {
      refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
    } catch (e) {
      refused(e);
    }
    out({
      tokens: tokenSummary(tokens),
      claims,
      id_header: protectedHeader,
      userinfo,
      refreshed: { ...tokenSummary(refreshed), claims: refreshed.claims() ?? null },
    });
    break;
  }

  case 'refresh': {
    let tokens;
    try {
      tokens = await client.refreshTokenGrant(config, env('REFRESH_TOKEN'));
    } catch (e) {
      refused(e);
    }
    out({ tokens: tokenSummary(tokens) });
    break;
  }

  default:
    console.error(`${process.argv[1]}: STEP=${step}: want authorize, exchange or refresh`);
    process.exit(2);
}
