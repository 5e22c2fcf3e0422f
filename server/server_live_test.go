package server_test

// Tests against a listening server, with real clients: golang.org/x/oauth2
// gets tokens, and golang-jwt validates them as a resource server would,
// with keys found through discovery and JWKS. Both are test-only
// dependencies.

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/keymint/keymint/apikey"
	"github.com/keymint/keymint/internal/resourcetest"
	"github.com/keymint/keymint/server"
	"github.com/keymint/keymint/token"
	"github.com/keymint/keymint/vault"
)

// live is an env whose server listens on 127.0.0.1 and runs (polling the
// vault and writing usage) until the test ends.
type live struct {
	*env
	url  string
	done chan error // Run's result
	// stop shuts the HTTP server down gracefully, then stops Run and
	// returns its error.
	stop func() error
}

func newLive(t *testing.T, adjust ...func(*server.Options)) *live {
	t.Helper()
	return newLiveWith(t, nil, adjust...)
}

// newLiveWith is newLive with a hook that runs before the server serves.
func newLiveWith(t *testing.T, beforeServe func(*server.Server), adjust ...func(*server.Options)) *live {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	e := newEnv(t, append([]func(*server.Options){func(o *server.Options) { o.Issuer = base }}, adjust...)...)
	e.clock.UseRealTime()
	if beforeServe != nil {
		beforeServe(e.srv)
	}
	hs := &http.Server{Handler: e.srv, ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(ln)
	ctx, cancel := context.WithCancel(context.Background())
	l := &live{env: e, url: base, done: make(chan error, 1)}
	go func() { l.done <- e.srv.Run(ctx) }()
	stopped := false
	t.Cleanup(func() {
		hs.Close()
		cancel()
		if !stopped {
			<-l.done
		}
	})
	l.stop = func() error {
		stopped = true
		if err := hs.Shutdown(context.Background()); err != nil {
			return err
		}
		cancel()
		return <-l.done
	}
	return l
}

// tokenSource is a client_credentials source for the named client.
func (l *live) config(name string, style oauth2.AuthStyle) *clientcredentials.Config {
	c := l.clients[name]
	return &clientcredentials.Config{ClientID: c.id, ClientSecret: c.secret, TokenURL: l.url + "/token", AuthStyle: style}
}

func TestGolangOAuth2ClientCredentials(t *testing.T) {
	l := newLive(t)
	ctx := context.Background()
	for name, style := range map[string]oauth2.AuthStyle{
		"header": oauth2.AuthStyleInHeader, "params": oauth2.AuthStyleInParams, "autodetect": oauth2.AuthStyleAutoDetect,
	} {
		t.Run(name, func(t *testing.T) {
			cfg := l.config("erp", style)
			cfg.Scopes = []string{"invoices:read"}
			tok, err := cfg.Token(ctx)
			if err != nil {
				t.Fatalf("Token: %v", err)
			}
			if tok.AccessToken == "" || tok.TokenType != "Bearer" || tok.Extra("scope") != "invoices:read" {
				t.Errorf("token = %+v scope %v", tok, tok.Extra("scope"))
			}
			if left := time.Until(tok.Expiry); left < 59*time.Minute || left > time.Hour+time.Second {
				t.Errorf("expires in %s", left)
			}
		})
	}

	t.Run("audience through EndpointParams", func(t *testing.T) {
		cfg := l.config("narrow", oauth2.AuthStyleInHeader)
		cfg.EndpointParams = url.Values{"resource": {"https://api.example"}}
		tok, err := cfg.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := l.introspect(t, "erp", tok.AccessToken)
		if got["aud"] != "https://api.example" {
			t.Errorf("aud = %v", got["aud"])
		}
	})

	t.Run("errors as RetrieveError", func(t *testing.T) {
		for _, tt := range []struct {
			cfg  *clientcredentials.Config
			code string
		}{
			{&clientcredentials.Config{ClientID: l.clients["erp"].id, ClientSecret: "kmcs_wrong", TokenURL: l.url + "/token", AuthStyle: oauth2.AuthStyleInHeader}, "invalid_client"},
			{func() *clientcredentials.Config {
				c := l.config("erp", oauth2.AuthStyleInParams)
				c.Scopes = []string{"admin"}
				return c
			}(), "invalid_scope"},
			{l.config("webapp", oauth2.AuthStyleInHeader), "unauthorized_client"},
		} {
			_, err := tt.cfg.Token(ctx)
			var re *oauth2.RetrieveError
			if !errors.As(err, &re) || re.ErrorCode != tt.code {
				t.Errorf("error = %v, want RetrieveError %s", err, tt.code)
			}
		}
	})

	// An HTTP client built from the config sends the token as Bearer.
	var seen string
	api := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = r.Header.Get("Authorization") })}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go api.Serve(ln)
	defer api.Close()
	resp, err := l.config("erp", oauth2.AuthStyleAutoDetect).Client(ctx).Get("http://" + ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !strings.HasPrefix(seen, "Bearer ey") {
		t.Errorf("API saw Authorization %q", seen)
	}
}

// TestResourceServer validates tokens as a resource server does: from the
// issuer URL alone, through the discovery document to jwks_uri, with
// golang-jwt, which shares no code with the signer.
func TestResourceServer(t *testing.T) {
	l := newLive(t)
	getJSON := func(u string, v any) {
		t.Helper()
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Fatalf("GET %s: %s %s", u, resp.Status, resp.Header.Get("Content-Type"))
		}
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	for _, wellKnown := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"} {
		t.Run(wellKnown, func(t *testing.T) {
			var md struct {
				Issuer        string `json:"issuer"`
				JWKSURI       string `json:"jwks_uri"`
				TokenEndpoint string `json:"token_endpoint"`
			}
			getJSON(l.url+wellKnown, &md)
			if md.Issuer != l.url {
				t.Fatalf("issuer %q, want %q (RFC 8414 §3.3)", md.Issuer, l.url)
			}
			resp, err := http.Get(md.JWKSURI)
			if err != nil {
				t.Fatal(err)
			}
			published, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			keys := resourcetest.ParseJWKS(t, published)

			cfg := l.config("erp", oauth2.AuthStyleInHeader)
			cfg.TokenURL = md.TokenEndpoint
			cfg.EndpointParams = url.Values{"audience": {"https://api.example"}}
			tok, err := cfg.Token(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			parser := jwt.NewParser(
				jwt.WithValidMethods([]string{"ES256"}),
				jwt.WithIssuer(md.Issuer),
				jwt.WithAudience("https://api.example"),
				jwt.WithExpirationRequired(),
				jwt.WithIssuedAt(),
			)
			var claims resourcetest.AccessTokenClaims
			_, err = parser.ParseWithClaims(tok.AccessToken, &claims, func(tok *jwt.Token) (any, error) {
				if typ, _ := tok.Header["typ"].(string); typ != "at+jwt" {
					return nil, errors.New("typ is not at+jwt")
				}
				kid, _ := tok.Header["kid"].(string)
				if key, ok := keys[kid]; ok {
					return key, nil
				}
				return nil, errors.New("unknown kid")
			})
			if err != nil {
				t.Fatalf("golang-jwt rejects the token: %v", err)
			}
			if claims.ClientID != l.clients["erp"].id || claims.Subject != claims.ClientID || claims.Scope != "invoices:read invoices:write" || claims.ID == "" {
				t.Errorf("claims = %+v", claims)
			}
			// A token tampered with on the way is refused.
			bad := tok.AccessToken[:len(tok.AccessToken)-4] + "AAAA"
			if _, err := parser.ParseWithClaims(bad, &resourcetest.AccessTokenClaims{}, func(*jwt.Token) (any, error) { return keys[l.signingKey(t).ID], nil }); err == nil {
				t.Error("golang-jwt accepted a tampered token")
			}
		})
	}
}

// TestVaultChangesHonoured: a client created, renamed or removed through
// another handle on the vault, as the CLI does, is honoured by the running
// server within a second, without a restart; and the server never holds
// the vault so long that the other handle waits.
func TestVaultChangesHonoured(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for reloads")
	}
	// Polling for a change fails authentication many times a second,
	// which the throttle would slow down: turn it off.
	l := newLiveWith(t, func(s *server.Server) { server.SetAuthThrottle(s, 1<<30, time.Millisecond) })
	// The CLI's handle: its writes would fail if the server held the vault
	// for more than a moment.
	cli, err := vault.Open(l.path, vault.Options{Identities: []age.Identity{l.identity}, LockTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"grant_type": {"client_credentials"}}
	status := func(id, secret string) int {
		req, err := http.NewRequest(http.MethodPost, l.url+"/token", strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(id, secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// within waits until status(id, secret) == want, failing after 1s.
	within := func(what string, id, secret string, want int) {
		t.Helper()
		start := time.Now()
		for status(id, secret) != want {
			if time.Since(start) > time.Second {
				t.Fatalf("%s: not honoured within 1s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Logf("%s: honoured after %s", what, time.Since(start).Round(time.Millisecond))
	}

	secret, err := apikey.Generate("kmcs")
	if err != nil {
		t.Fatal(err)
	}
	c := &vault.Client{Credential: vault.Credential{Name: "newcomer", Scopes: []string{"s"}},
		GrantTypes: []string{token.GrantClientCredentials}, TokenTTL: time.Minute}
	if status(c.ID, secret) != 401 {
		t.Fatal("unknown client accepted")
	}
	if err := cli.Update(func(tx *vault.Tx) error { return tx.CreateClient(c, secret) }); err != nil {
		t.Fatal(err)
	}
	within("created client", c.ID, secret, 200)

	if err := cli.Update(func(tx *vault.Tx) error { _, err := tx.RenameClient("newcomer", "renamed"); return err }); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if got := status(c.ID, secret); got != 200 {
		t.Errorf("renamed client: %d", got)
	}

	newSecret, err := apikey.Generate("kmcs")
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.Update(func(tx *vault.Tx) error { _, err := tx.RotateClient(c.ID, newSecret, 0); return err }); err != nil {
		t.Fatal(err)
	}
	within("rotated secret", c.ID, newSecret, 200)
	within("retired secret", c.ID, secret, 401)

	if err := cli.Update(func(tx *vault.Tx) error { _, err := tx.DeleteClients("renamed"); return err }); err != nil {
		t.Fatal(err)
	}
	within("removed client", c.ID, newSecret, 401)
}

// TestLastUsedGroupCommit: last_used_at reaches the vault in group commits,
// not one write per token, and the last uses are written on shutdown.
func TestLastUsedGroupCommit(t *testing.T) {
	lastUsed := func(t *testing.T, e *env, name string) *time.Time {
		t.Helper()
		var c *vault.Client
		if err := e.open(t).View(func(tx *vault.Tx) (err error) { c, err = tx.Client(name); return err }); err != nil {
			t.Fatal(err)
		}
		return c.LastUsedAt
	}
	generation := func(t *testing.T, e *env) uint64 {
		t.Helper()
		g, err := e.vault.Generation()
		if err != nil {
			t.Fatal(err)
		}
		return g
	}

	t.Run("batched", func(t *testing.T) {
		if testing.Short() {
			t.Skip("waits for a flush")
		}
		l := newLive(t, func(o *server.Options) { o.FlushInterval = 300 * time.Millisecond })
		before := generation(t, l.env)
		errs := make(chan error, 40)
		for i := range 40 {
			go func() {
				_, err := l.config([]string{"erp", "narrow"}[i%2], oauth2.AuthStyleInHeader).Token(context.Background())
				errs <- err
			}()
		}
		for range 40 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(700 * time.Millisecond)
		if lastUsed(t, l.env, "erp") == nil || lastUsed(t, l.env, "narrow") == nil {
			t.Fatal("last_used_at not written")
		}
		if lastUsed(t, l.env, "webapp") != nil {
			t.Error("an unused client has last_used_at")
		}
		if writes := generation(t, l.env) - before; writes > 3 {
			t.Errorf("40 tokens took %d vault writes", writes)
		}
	})

	t.Run("flushed on shutdown", func(t *testing.T) {
		l := newLive(t, func(o *server.Options) { o.FlushInterval = time.Hour })
		if _, err := l.config("erp", oauth2.AuthStyleInHeader).Token(context.Background()); err != nil {
			t.Fatal(err)
		}
		if lastUsed(t, l.env, "erp") != nil {
			t.Fatal("written before the flush")
		}
		if err := l.stop(); err != nil {
			t.Fatalf("stop: %v", err)
		}
		if lastUsed(t, l.env, "erp") == nil {
			t.Error("last use not written on shutdown")
		}
	})
}
