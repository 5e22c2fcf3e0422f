package token

import (
	"encoding/json"
	"maps"
	"slices"
	"testing"
	"time"
)

// TestResponseMembers: the token response has RFC 6749 §5.1's members
// and no others (scope left out when there is none), each of its type:
// a client that reads a member it knows, such as Authlib reading
// expires_at as epoch seconds, finds nothing of keymint's own.
func TestResponseMembers(t *testing.T) {
	signer := mustSigner(t, mustGenerate(t, ES256))
	scoped := validClaims()
	unscoped := validClaims()
	unscoped.Scope = nil
	for _, tt := range []struct {
		name   string
		claims Claims
		now    time.Time
		want   map[string]any
	}{
		{"scoped", scoped, testNow, map[string]any{"token_type": "Bearer", "expires_in": 3600.0, "scope": "invoices:read invoices:write"}},
		{"unscoped, half a second in", unscoped, testNow.Add(500 * time.Millisecond), map[string]any{"token_type": "Bearer", "expires_in": 3600.0}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := Mint(signer, tt.claims, tt.now)
			if err != nil {
				t.Fatal(err)
			}
			body, err := json.Marshal(resp)
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			wantNames := slices.Sorted(maps.Keys(tt.want))
			wantNames = append(wantNames, "access_token")
			slices.Sort(wantNames)
			if names := slices.Sorted(maps.Keys(got)); !slices.Equal(names, wantNames) {
				t.Fatalf("members %q, want %q: %s", names, wantNames, body)
			}
			if token, ok := got["access_token"].(string); !ok || token == "" {
				t.Errorf("access_token %v", got["access_token"])
			}
			for name, want := range tt.want {
				if got[name] != want {
					t.Errorf("%s = %v (%T), want %v", name, got[name], got[name], want)
				}
			}
		})
	}
}
