package token

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/keymint/keymint/vault"
)

// TestCheckActive: each reason a token is not active has its sentinel, and
// IsInactive tells those from a lookup that failed.
func TestCheckActive(t *testing.T) {
	key := mustGenerate(t, ES256)
	signer := mustSigner(t, key)
	ks := mustKeySet(t, key)
	expires := testNow.Add(time.Minute)
	clients := map[string]*vault.Client{
		"client-ci": {Credential: vault.Credential{ID: "client-ci"}},
		"lapsed":    {Credential: vault.Credential{ID: "lapsed", ExpiresAt: &expires}},
		"off":       {Credential: vault.Credential{ID: "off", Disabled: true}},
		"by-name":   {Credential: vault.Credential{ID: "another"}}, // a lookup by name
	}
	revokedJTI := NewJTI()
	lookupFailed := errors.New("vault unreadable")
	// grants of users to client-ci: u1's given before testNow, u-late's
	// after it (so after the tokens below were issued).
	grants := map[string]*vault.Grant{
		"u1":     {UserID: "u1", ClientID: "client-ci", CreatedAt: testNow.Add(-time.Hour)},
		"u-late": {UserID: "u-late", ClientID: "client-ci", CreatedAt: testNow.Add(time.Second)},
	}
	want := ActiveContext{
		Issuer:  "https://keymint.test",
		Now:     testNow,
		Revoked: func(jti string) (bool, error) { return jti == revokedJTI, nil },
		Client: func(id string) (*vault.Client, error) {
			if id == "broken" {
				return nil, lookupFailed
			}
			if c, ok := clients[id]; ok {
				return c, nil
			}
			return nil, fmt.Errorf("client %s: %w", id, vault.ErrNotFound)
		},
		Grant: func(userID, clientID string) (*vault.Grant, error) {
			if userID == "u-broken" {
				return nil, lookupFailed
			}
			if g, ok := grants[userID]; ok && g.ClientID == clientID {
				return g, nil
			}
			return nil, fmt.Errorf("grant: %w", vault.ErrNotFound)
		},
	}
	with := func(change func(*Claims)) string {
		c := validClaims()
		change(&c)
		return mustSign(t, signer, c)
	}
	tests := []struct {
		name  string
		token string
		at    time.Duration // after testNow
		want  error         // nil for active
	}{
		{"active", with(func(*Claims) {}), 0, nil},
		{"other issuer", with(func(c *Claims) { c.Issuer = "https://keymint.test/" }), 0, ErrOtherIssuer},
		{"expired", with(func(*Claims) {}), time.Hour, ErrExpired},
		{"not yet valid", with(func(*Claims) {}), -time.Hour, ErrNotYetValid},
		{"revoked", with(func(c *Claims) { c.ID = revokedJTI }), 0, ErrRevoked},
		{"client removed", with(func(c *Claims) { c.ClientID = "gone" }), 0, ErrClientRemoved},
		{"client found by name only", with(func(c *Claims) { c.ClientID = "by-name" }), 0, ErrClientRemoved},
		{"client expired", with(func(c *Claims) { c.ClientID = "lapsed" }), 2 * time.Minute, ErrClientExpired},
		{"client disabled", with(func(c *Claims) { c.ClientID = "off" }), 0, ErrClientDisabled},
		{"unknown key", mustSign(t, mustSigner(t, mustGenerate(t, ES256)), validClaims()), 0, ErrUnknownKey},
		{"malformed", "not.a.token", 0, ErrMalformedToken},
		{"lookup failed", with(func(c *Claims) { c.ClientID = "broken" }), 0, lookupFailed},
		{"user's token, grant stands", with(func(c *Claims) { c.Subject = "u1"; c.AuthTime = testNow.Add(-time.Minute) }), 0, nil},
		{"user's token, grant revoked", with(func(c *Claims) { c.Subject = "u-gone" }), 0, ErrGrantRevoked},
		{"user's token, granted again since", with(func(c *Claims) { c.Subject = "u-late" }), 0, ErrGrantRevoked},
		{"user's token, grant lookup failed", with(func(c *Claims) { c.Subject = "u-broken" }), 0, lookupFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := want
			w.Now = testNow.Add(tt.at)
			claims, err := CheckActive(ks, tt.token, w)
			if tt.want == nil {
				if err != nil || claims.ClientID != "client-ci" {
					t.Fatalf("CheckActive = %+v, %v; want active", claims, err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			if inactive := IsInactive(err); inactive != (tt.want != lookupFailed) {
				t.Errorf("IsInactive(%v) = %v", err, inactive)
			}
		})
	}

	t.Run("nothing to check against", func(t *testing.T) {
		token := with(func(*Claims) {})
		for _, w := range []ActiveContext{{Now: testNow, Revoked: want.Revoked, Client: want.Client}, {Issuer: want.Issuer, Now: testNow}} {
			if _, err := CheckActive(ks, token, w); err == nil || IsInactive(err) {
				t.Errorf("CheckActive with %+v: %v, want a failure that is no verdict", w, err)
			}
		}
	})
}

func TestCheckIssuer(t *testing.T) {
	for in, want := range map[string]string{
		"https://auth.example":        "https://auth.example",
		"https://auth.example/":       "https://auth.example",
		"http://127.0.0.1:8080":       "http://127.0.0.1:8080",
		"https://auth.example/tenant": "https://auth.example/tenant",
	} {
		if got, err := CheckIssuer(in); err != nil || got != want {
			t.Errorf("CheckIssuer(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{
		"", "not a url?#x", "auth.example", "ftp://auth.example", "https://", "https://u:p@auth.example",
		"https://auth.example/?x=1", "https://auth.example?", "https://auth.example/#", "https://auth.example/#x",
		"https://auth.example/a b", "https://auth.example/\n",
	} {
		if got, err := CheckIssuer(in); !errors.Is(err, ErrInvalidIssuer) {
			t.Errorf("CheckIssuer(%q) = %q, %v; want ErrInvalidIssuer", in, got, err)
		}
	}
}
