package token_test

import (
	"errors"
	"testing"

	"github.com/keymint/keymint/token"
)

func TestCheckRedirectURI(t *testing.T) {
	for _, tt := range []struct {
		uri string
		ok  bool
	}{
		{"https://app.example/cb", true},
		{"https://app.example:8443/cb?x=1", true},
		{"http://127.0.0.1/cb", true},
		{"http://127.0.0.1:9000/cb", true},
		{"http://[::1]/cb", true},
		{"http://localhost:3000/cb", true},
		{"com.example.app:/oauth2redirect", true},
		{"http://app.example/cb", false},      // plain http elsewhere
		{"https://app.example/cb#x", false},   // fragment
		{"https://app.example/cb#", false},    // empty fragment
		{"/cb", false},                        // relative
		{"https:///cb", false},                // no host
		{"https://u:p@app.example/cb", false}, // user information
		{"javascript:alert(1)", false},
		{"data:text/html,x", false},
		{"", false},
	} {
		err := token.CheckRedirectURI(tt.uri)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, token.ErrRedirectURI)) {
			t.Errorf("CheckRedirectURI(%q) = %v, want ok=%v", tt.uri, err, tt.ok)
		}
	}
}

func TestMatchRedirectURI(t *testing.T) {
	registered := []string{"https://app.example/cb", "http://127.0.0.1/cb", "http://[::1]:8000/native", "http://localhost:3000/cb"}
	for _, tt := range []struct {
		requested string
		want      string // "" when refused
	}{
		{"https://app.example/cb", "https://app.example/cb"},
		{"https://app.example/cb/", ""},    // exact match only
		{"https://app.example/cb?x=1", ""}, // no added query
		{"https://APP.example/cb", ""},     // compared as strings
		{"https://app.example:443/cb", ""}, // not normalized
		{"https://app.example/CB", ""},
		{"https://evil.example/cb", ""},
		{"https://app.example.evil.example/cb", ""},
		{"http://127.0.0.1/cb", "http://127.0.0.1/cb"},
		{"http://127.0.0.1:51234/cb", "http://127.0.0.1:51234/cb"}, // loopback: any port
		{"http://127.0.0.1:51234/other", ""},
		{"http://127.0.0.1:0/cb", ""},
		{"http://127.0.0.1:99999/cb", ""},
		{"http://127.0.0.2:51234/cb", ""}, // another loopback address is another URI
		{"http://[::1]:1234/native", "http://[::1]:1234/native"},
		{"http://localhost:4000/cb", ""}, // the name localhost gets no port exemption
		{"http://localhost:3000/cb", "http://localhost:3000/cb"},
		{"http://127.0.0.1:5000/cb#frag", ""},
		{"http://user@127.0.0.1:5000/cb", ""},
		{"", ""},
	} {
		got, ok := token.MatchRedirectURI(registered, tt.requested)
		if ok != (tt.want != "") || got != tt.want {
			t.Errorf("MatchRedirectURI(%q) = %q, %v; want %q", tt.requested, got, ok, tt.want)
		}
	}
}

func FuzzMatchRedirectURI(f *testing.F) {
	f.Add("http://127.0.0.1:1/cb")
	f.Add("https://app.example/cb")
	f.Fuzz(func(t *testing.T, requested string) {
		registered := []string{"https://app.example/cb", "http://127.0.0.1/cb"}
		got, ok := token.MatchRedirectURI(registered, requested)
		if ok && got != requested {
			t.Fatalf("matched %q as %q: the redirect must go where the request said", requested, got)
		}
		if ok && requested != registered[0] && requested != registered[1] {
			if token.CheckRedirectURI(requested) != nil {
				t.Fatalf("matched %q, which could not be registered", requested)
			}
		}
	})
}
