package token

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"
)

func TestSignVerifyRoundTrip(t *testing.T) {
	f := newFixture(t)
	variants := []struct {
		name   string
		modify func(*Claims)
	}{
		{"two scopes one audience", func(*Claims) {}},
		{"no scope", func(c *Claims) { c.Scope = nil }},
		{"one scope", func(c *Claims) { c.Scope = []string{"read"} }},
		{"several audiences", func(c *Claims) { c.Audience = []string{"https://a.example", "https://b.example"} }},
		{"sub-second times are cut to seconds", func(c *Claims) {
			c.IssuedAt = c.IssuedAt.Add(300 * time.Millisecond)
			c.ExpiresAt = c.ExpiresAt.Add(700 * time.Millisecond)
		}},
		{"times in another zone", func(c *Claims) {
			zone := time.FixedZone("UTC+5", 5*3600)
			c.IssuedAt, c.ExpiresAt = c.IssuedAt.In(zone), c.ExpiresAt.In(zone)
		}},
		{"scope with every allowed character class", func(c *Claims) { c.Scope = []string{"a!#[]~", "urn:x:y/z?q=1"} }},
	}
	for _, alg := range Algs() {
		for _, v := range variants {
			t.Run(string(alg)+"/"+v.name, func(t *testing.T) {
				in := validClaims()
				v.modify(&in)
				token := mustSign(t, f.signers[alg], in)
				got, err := f.set.Verify(token, testNow)
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				want := in
				want.IssuedAt = in.IssuedAt.Truncate(time.Second).UTC()
				want.ExpiresAt = in.ExpiresAt.Truncate(time.Second).UTC()
				if !reflect.DeepEqual(got, want) {
					t.Errorf("Verify returned\n %+v\nwant\n %+v", got, want)
				}
			})
		}
	}
}

func TestSignedHeader(t *testing.T) {
	f := newFixture(t)
	for _, alg := range Algs() {
		t.Run(string(alg), func(t *testing.T) {
			s := f.signers[alg]
			if s.KeyID() != f.keys[alg].ID || s.Alg() != alg {
				t.Errorf("Signer KeyID %q Alg %q", s.KeyID(), s.Alg())
			}
			header := decodeSegment(t, mustSign(t, s, validClaims()), 0)
			want := map[string]any{"alg": string(alg), "kid": f.keys[alg].ID, "typ": "at+jwt"}
			if !reflect.DeepEqual(header, want) {
				t.Errorf("header = %v, want %v", header, want)
			}
		})
	}
}

// TestClaimsEncoding pins the wire form RFC 9068 and RFC 7519 ask for.
func TestClaimsEncoding(t *testing.T) {
	s := mustSigner(t, mustGenerate(t, ES256))
	tests := []struct {
		name     string
		audience []string
		scope    []string
		wantAud  any
		wantScp  any // nil: no scope member at all
	}{
		{"one audience is a string", []string{"api"}, []string{"read"}, "api", "read"},
		{"several audiences are an array", []string{"api", "admin"}, []string{"read"}, []any{"api", "admin"}, "read"},
		{"scopes are one space-separated string", []string{"api"}, []string{"read", "write", "x:y"}, "api", "read write x:y"},
		{"no scope, no member", []string{"api"}, nil, "api", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validClaims()
			c.Audience, c.Scope = tt.audience, tt.scope
			claims := decodeSegment(t, mustSign(t, s, c), 1)
			if !reflect.DeepEqual(claims["aud"], tt.wantAud) {
				t.Errorf("aud = %#v, want %#v", claims["aud"], tt.wantAud)
			}
			if got, ok := claims["scope"]; tt.wantScp == nil && ok || tt.wantScp != nil && got != tt.wantScp {
				t.Errorf("scope = %#v (present %v), want %#v", got, ok, tt.wantScp)
			}
			want := map[string]any{
				"iss":       c.Issuer,
				"sub":       c.Subject,
				"iat":       json.Number("1793872800"), // testNow, 2026-11-05T10:00:00Z
				"exp":       json.Number("1793876400"),
				"jti":       c.ID,
				"client_id": c.ClientID,
			}
			for name, v := range want {
				if claims[name] != v {
					t.Errorf("%s = %#v, want %#v", name, claims[name], v)
				}
			}
		})
	}
}

func TestSignRejectsInvalidClaims(t *testing.T) {
	s := mustSigner(t, mustGenerate(t, ES256))
	tests := []struct {
		name   string
		modify func(*Claims)
		also   error
	}{
		{"no iss", func(c *Claims) { c.Issuer = "" }, ErrMissingClaim},
		{"no sub", func(c *Claims) { c.Subject = "" }, ErrMissingClaim},
		{"no aud", func(c *Claims) { c.Audience = nil }, ErrMissingClaim},
		{"empty aud value", func(c *Claims) { c.Audience = []string{"api", ""} }, ErrMissingClaim},
		{"no iat", func(c *Claims) { c.IssuedAt = time.Time{} }, ErrMissingClaim},
		{"no exp", func(c *Claims) { c.ExpiresAt = time.Time{} }, ErrMissingClaim},
		{"no jti", func(c *Claims) { c.ID = "" }, ErrMissingClaim},
		{"no client_id", func(c *Claims) { c.ClientID = "" }, ErrMissingClaim},
		{"exp equals iat", func(c *Claims) { c.ExpiresAt = c.IssuedAt }, nil},
		{"exp within the second of iat", func(c *Claims) { c.ExpiresAt = c.IssuedAt.Add(500 * time.Millisecond) }, nil},
		{"exp before iat", func(c *Claims) { c.ExpiresAt = c.IssuedAt.Add(-time.Hour) }, nil},
		{"scope with a space", func(c *Claims) { c.Scope = []string{"read write"} }, nil},
		{"empty scope", func(c *Claims) { c.Scope = []string{"read", ""} }, nil},
		{"scope with a quote", func(c *Claims) { c.Scope = []string{`a"b`} }, nil},
		{"scope with a backslash", func(c *Claims) { c.Scope = []string{`a\b`} }, nil},
		{"scope with non-ASCII", func(c *Claims) { c.Scope = []string{"lecture:écriture"} }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validClaims()
			tt.modify(&c)
			token, err := s.Sign(c)
			if !errors.Is(err, ErrInvalidClaims) || tt.also != nil && !errors.Is(err, tt.also) {
				t.Fatalf("Sign = %q, %v; want ErrInvalidClaims (and %v)", token, err, tt.also)
			}
		})
	}
}

func TestNewJTI(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		jti := NewJTI()
		raw, err := base64.RawURLEncoding.DecodeString(jti)
		if err != nil || len(raw) != 16 {
			t.Fatalf("NewJTI() = %q: %d bytes, %v; want 16 bytes of base64url", jti, len(raw), err)
		}
		if seen[jti] {
			t.Fatalf("NewJTI repeated %q", jti)
		}
		seen[jti] = true
	}
}

// TestConcurrentSignVerify shares one Signer and one KeySet between
// goroutines, as a token endpoint does; run with -race.
func TestConcurrentSignVerify(t *testing.T) {
	f := newFixture(t)
	var wg sync.WaitGroup
	for _, alg := range Algs() {
		for range 4 {
			wg.Go(func() {
				for range 20 {
					token, err := f.signers[alg].Sign(validClaims())
					if err != nil {
						t.Error(err)
						return
					}
					if _, err := f.set.Verify(token, testNow); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
}
