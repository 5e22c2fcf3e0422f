package token

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/keymint/keymint/vault"
)

// TestIssue is the pipeline as a table: the client may be used, the
// request is within what it may have, one use is counted, the claims are
// signed; a step that fails stops it. A request the client may not have
// counts no use, and a refused count signs nothing.
func TestIssue(t *testing.T) {
	key := mustGenerate(t, ES256)
	signer, ks := mustSigner(t, key), mustKeySet(t, key)
	const iss = "https://keymint.test"
	expired := testNow.Add(-time.Second)
	client := func(adjust ...func(*vault.Client)) *vault.Client {
		c := &vault.Client{
			Credential: vault.Credential{ID: "cl_erp", Name: "erp", Scopes: []string{"invoices:read", "invoices:write"}},
			GrantTypes: []string{GrantClientCredentials},
			TokenTTL:   time.Hour,
			Audience:   []string{"https://api.example"},
		}
		for _, f := range adjust {
			f(c)
		}
		return c
	}
	errRefused := errors.New("over quota")
	errBusy := errors.New("vault busy")
	for _, tt := range []struct {
		name      string
		client    *vault.Client
		req       Request
		signer    *Signer
		countErr  error
		wantErr   error // nil for a token
		wantCount bool  // whether count was called
	}{
		{name: "the client's own", client: client(), signer: signer, wantCount: true},
		{name: "narrower", client: client(), req: Request{Scope: []string{"invoices:read"}, TTL: time.Minute, Audience: []string{"https://api.example"}}, signer: signer, wantCount: true},
		{name: "count refuses: nothing signed", client: client(), signer: signer, countErr: errRefused, wantErr: errRefused, wantCount: true},
		{name: "count fails: nothing signed", client: client(), signer: signer, countErr: errBusy, wantErr: errBusy, wantCount: true},
		{name: "scope outside the client's: not counted", client: client(), req: Request{Scope: []string{"invoices:delete"}}, signer: signer, countErr: errRefused, wantErr: ErrInvalidScope},
		{name: "audience outside the client's: not counted", client: client(), req: Request{Audience: []string{"https://evil.example"}}, signer: signer, wantErr: ErrInvalidRequest},
		{name: "lifetime over the client's: not counted", client: client(), req: Request{TTL: 2 * time.Hour}, signer: signer, wantErr: ErrInvalidRequest},
		{name: "grant not the client's: not counted", client: client(func(c *vault.Client) { c.GrantTypes = nil }), signer: signer, wantErr: ErrUnauthorizedClient},
		{name: "expired client: not counted", client: client(func(c *vault.Client) { c.ExpiresAt = &expired }), signer: signer, wantErr: vault.ErrExpired},
		{name: "expired client asking too much: expiry first", client: client(func(c *vault.Client) { c.ExpiresAt = &expired }), req: Request{Scope: []string{"invoices:delete"}}, signer: signer, wantErr: vault.ErrExpired},
		{name: "no client: not counted", client: nil, signer: signer, wantErr: vault.ErrNotFound},
		{name: "no signer: not counted", client: client(), signer: nil, wantErr: ErrNoSigner},
	} {
		t.Run(tt.name, func(t *testing.T) {
			counted := 0
			claims, resp, err := Issue(tt.client, tt.req, iss, testNow, tt.signer, func() error {
				counted++
				return tt.countErr
			})
			if want := map[bool]int{true: 1}[tt.wantCount]; counted != want {
				t.Errorf("counted %d times, want %d", counted, want)
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Issue = %v, want %v", err, tt.wantErr)
				}
				var ce *CountError
				if isCount := errors.As(err, &ce); isCount != (tt.countErr != nil && tt.wantCount) {
					t.Errorf("Issue = %v: a CountError is %v, want %v", err, isCount, !isCount)
				}
				if resp != (Response{}) || claims.ID != "" {
					t.Errorf("refused, yet issued %+v, %+v", resp, claims)
				}
				return
			}
			if err != nil {
				t.Fatalf("Issue: %v", err)
			}
			got, err := ks.Verify(resp.AccessToken, testNow)
			if err != nil {
				t.Fatalf("the token does not verify: %v", err)
			}
			if got.ID != claims.ID || got.ClientID != "cl_erp" || got.Issuer != iss {
				t.Errorf("signed %+v, returned %+v", got, claims)
			}
			wantScope := tt.client.Scopes
			if len(tt.req.Scope) > 0 {
				wantScope = tt.req.Scope
			}
			if !slices.Equal(got.Scope, wantScope) {
				t.Errorf("scope %v, want %v", got.Scope, wantScope)
			}
			wantTTL := tt.client.TokenTTL
			if tt.req.TTL != 0 {
				wantTTL = tt.req.TTL
			}
			if resp.ExpiresIn != int64(wantTTL/time.Second) {
				t.Errorf("expires_in %d, want %v", resp.ExpiresIn, wantTTL)
			}
		})
	}
}
