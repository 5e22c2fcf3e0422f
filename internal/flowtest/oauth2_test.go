package flowtest_test

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/keymint/keymint/internal/browsertest"
	"github.com/keymint/keymint/internal/flowtest"
)

// idClaims are the ID token's claims beyond what oidc.IDToken has.
type idClaims struct {
	Name              string `json:"name"`
	PreferredUsername string `json:"preferred_username"`
	AuthTime          int64  `json:"auth_time"`
	AtHash            string `json:"at_hash"`
}

// TestGoClient is a Go web application signing a user in, written as the
// Go ecosystem writes one: golang.org/x/oauth2 for the authorization-code
// flow with PKCE, github.com/coreos/go-oidc finding keymint by its issuer
// URL and verifying the ID token (signature by the published keys, iss,
// aud, exp, then nonce and at_hash), and oauth2's TokenSource refreshing.
// The user signs in and consents in Chromium.
func TestGoClient(t *testing.T) {
	s := newSite(t)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()

	provider, err := oidc.NewProvider(ctx, s.issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	if ep := provider.Endpoint(); ep.AuthURL != s.issuer+"/authorize" || ep.TokenURL != s.issuer+"/token" {
		t.Errorf("discovered endpoints %+v", ep)
	}
	cfg := oauth2.Config{
		ClientID: s.webapp.ID, ClientSecret: s.webapp.Secret,
		Endpoint: provider.Endpoint(), RedirectURL: s.cb.URL,
		Scopes: []string{oidc.ScopeOpenID, "profile", "reports:read"},
	}
	verifier := provider.Verifier(&oidc.Config{ClientID: s.webapp.ID})

	// The application sends the browser to keymint.
	pkce, state, nonce := oauth2.GenerateVerifier(), rand.Text(), rand.Text()
	authURL := cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(pkce), oidc.Nonce(nonce))

	b := browsertest.New(t)
	if status := b.Navigate(authURL); status != http.StatusOK {
		t.Fatalf("authorization request: status %d, want the sign-in page", status)
	}
	if status := flowtest.SignIn(b, "u1", userPassword); status != http.StatusOK {
		t.Fatalf("sign-in: status %d, want the consent page", status)
	}
	if h1 := b.Text("h1"); !strings.Contains(h1, "webapp") {
		t.Errorf("consent heading %q does not name the client", h1)
	}
	if got, want := flowtest.ConsentScopes(b), cfg.Scopes; !slices.Equal(got, want) {
		t.Errorf("consent page lists scopes %q, want %q", got, want)
	}
	if status := flowtest.Allow(b); status != http.StatusOK {
		t.Fatalf("consent: the callback page's status is %d", status)
	}
	q := s.cb.Query()
	if q.Get("state") != state || q.Get("iss") != s.issuer || q.Get("code") == "" || q.Has("error") {
		t.Fatalf("callback %v: want code, state %s and iss %s", q, state, s.issuer)
	}

	// The application redeems the code with the PKCE verifier.
	tok, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(pkce))
	if err != nil {
		t.Fatalf("code exchange: %v", err)
	}
	if !tok.Valid() || tok.Type() != "Bearer" || !strings.HasPrefix(tok.RefreshToken, "kmrt_") || tok.Expiry.IsZero() {
		t.Errorf("token %+v: want a valid Bearer token that expires, and a kmrt_ refresh token", tok)
	}
	rawID, _ := tok.Extra("id_token").(string)
	idToken, err := verifier.Verify(ctx, rawID)
	if err != nil {
		t.Fatalf("ID token: %v", err)
	}
	if idToken.Nonce != nonce {
		t.Errorf("ID token nonce %q, want %q", idToken.Nonce, nonce)
	}
	if err := idToken.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Errorf("at_hash: %v", err)
	}
	var claims idClaims
	if err := idToken.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if idToken.Subject != s.user.ID || claims.Name != "Ada Lovelace" || claims.PreferredUsername != "u1" || claims.AtHash == "" {
		t.Errorf("ID token: sub %q, claims %+v; want sub %s, Ada Lovelace, u1, at_hash", idToken.Subject, claims, s.user.ID)
	}
	if at := time.Unix(claims.AuthTime, 0); time.Since(at) > time.Minute || time.Until(at) > 5*time.Second {
		t.Errorf("auth_time %s is not the sign-in just now", at)
	}

	info, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	var profile struct {
		Name              string `json:"name"`
		PreferredUsername string `json:"preferred_username"`
	}
	if err := info.Claims(&profile); err != nil {
		t.Fatal(err)
	}
	if info.Subject != s.user.ID || profile.Name != "Ada Lovelace" || profile.PreferredUsername != "u1" || info.Email != "" {
		t.Errorf("userinfo sub %q email %q %+v; want %s, no email (scope email not asked)", info.Subject, info.Email, profile, s.user.ID)
	}
	if a := s.k.Introspect(s.webapp, tok.AccessToken); a["active"] != true || a["sub"] != s.user.ID || a["scope"] != "openid profile reports:read" {
		t.Errorf("introspection of the access token: %v", a)
	}

	// The access token expires; oauth2's TokenSource refreshes it, and
	// keymint rotates the refresh token.
	expired := *tok
	expired.Expiry = time.Now().Add(-time.Minute)
	refreshed, err := cfg.TokenSource(ctx, &expired).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if refreshed.AccessToken == tok.AccessToken || refreshed.RefreshToken == tok.RefreshToken || !strings.HasPrefix(refreshed.RefreshToken, "kmrt_") || !refreshed.Valid() {
		t.Errorf("refreshed token %+v: want a new access token and a new refresh token", refreshed)
	}
	if raw, ok := refreshed.Extra("id_token").(string); ok {
		// OpenID Connect Core §12.2: the same iss, sub and aud, and
		// auth_time of the original sign-in.
		again, err := verifier.Verify(ctx, raw)
		if err != nil {
			t.Fatalf("ID token of the refresh: %v", err)
		}
		var c idClaims
		if err := again.Claims(&c); err != nil {
			t.Fatal(err)
		}
		if again.Subject != idToken.Subject || c.AuthTime != claims.AuthTime {
			t.Errorf("ID token of the refresh: sub %s auth_time %d, want %s and %d", again.Subject, c.AuthTime, idToken.Subject, claims.AuthTime)
		}
		if err := again.VerifyAccessToken(refreshed.AccessToken); err != nil {
			t.Errorf("at_hash of the refresh's ID token: %v", err)
		}
	}
	if _, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(refreshed)); err != nil {
		t.Errorf("userinfo with the refreshed access token: %v", err)
	}

	// Signed in and consented: a second sign-in of the application goes
	// straight back with a code, asking the user nothing.
	pkce2, state2 := oauth2.GenerateVerifier(), rand.Text()
	if status := b.Navigate(cfg.AuthCodeURL(state2, oauth2.S256ChallengeOption(pkce2), oidc.Nonce(rand.Text()))); status != http.StatusOK {
		t.Fatalf("second authorization: status %d", status)
	}
	got := s.cb.Received()
	if len(got) != 2 || got[1].Query().Get("state") != state2 || got[1].Query().Get("code") == "" {
		t.Fatalf("second authorization: the callback received %v, want a second code with state %s", got, state2)
	}
	if _, err := cfg.Exchange(ctx, got[1].Query().Get("code"), oauth2.VerifierOption(pkce2)); err != nil {
		t.Errorf("second code exchange: %v", err)
	}

	// The refresh token already rotated, presented again: refused, and
	// the family it belongs to is revoked (RFC 9700 §4.14.2).
	_, err = cfg.TokenSource(ctx, &expired).Token()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Errorf("reused refresh token: %v, want invalid_grant", err)
	}
	latest := *refreshed
	latest.Expiry = time.Now().Add(-time.Minute)
	_, err = cfg.TokenSource(ctx, &latest).Token()
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Errorf("the latest refresh token of a replayed family: %v, want invalid_grant", err)
	}
	stayedOnMachine(t, b)
}
