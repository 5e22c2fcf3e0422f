package token_test

import (
	"slices"
	"testing"

	"github.com/keymint/keymint/token"
)

// TestAudiences: an audience is taken whole, never split on a comma or a
// space; empty values are dropped and repeats count once.
func TestAudiences(t *testing.T) {
	for _, tt := range []struct {
		in, want []string
	}{
		{nil, nil},
		{[]string{""}, nil},
		{[]string{"urn:x,y"}, []string{"urn:x,y"}},
		{[]string{"https://a.example", "urn:x,y", "https://a.example", "", "a b"}, []string{"https://a.example", "urn:x,y", "a b"}},
	} {
		if got := token.Audiences(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("Audiences(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestGrantTypes(t *testing.T) {
	for _, g := range []string{"client_credentials", "authorization_code"} {
		if !token.ValidClientGrantType(g) {
			t.Errorf("%s refused", g)
		}
	}
	for _, g := range []string{"", "password", "refresh_token", "Client_Credentials"} {
		if token.ValidClientGrantType(g) {
			t.Errorf("%q accepted", g)
		}
	}
	if token.ClientGrantTypes[0] != token.GrantClientCredentials {
		t.Errorf("default grant %s", token.ClientGrantTypes[0])
	}
	for _, g := range token.SupportedGrantTypes {
		// refresh_token comes with authorization_code, not on its own.
		if !token.ValidClientGrantType(g) && g != token.GrantRefreshToken {
			t.Errorf("supported grant %s cannot be given to a client", g)
		}
	}
}
