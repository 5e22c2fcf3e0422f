package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/keymint/keymint/apikey"
	"github.com/keymint/keymint/server"
	"github.com/keymint/keymint/token"
	"github.com/keymint/keymint/vault"
)

// serverEpoch is where the clocks of the endpoint tests start.
var serverEpoch = time.Date(2026, 11, 5, 10, 0, 0, 0, time.UTC)

const testIssuer = "https://keymint.test"

// clock is an injectable clock that moves only when a test advances it.
type clock struct {
	mu   sync.Mutex
	now  time.Time
	real bool // follow time.Now, for tests against real clients
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.real {
		return time.Now()
	}
	return c.now
}

func (c *clock) UseRealTime() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.real = true
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// logTo makes the server log at debug level, as text or JSON, into logs.
func logTo(logs *syncBuffer, format string) func(*server.Options) {
	return func(o *server.Options) {
		opts := &slog.HandlerOptions{Level: slog.LevelDebug}
		if format == "text" {
			o.Logger = slog.New(slog.NewTextHandler(logs, opts))
		} else {
			o.Logger = slog.New(slog.NewJSONHandler(logs, opts))
		}
	}
}

// syncBuffer is a log sink that goroutines may share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testClient is a client of the test vault and its secret.
type testClient struct {
	id, secret string
}

// env is a vault with a signing key and a few clients, and a server on it.
type env struct {
	path     string
	identity *age.X25519Identity
	clock    *clock
	vault    *vault.Vault
	srv      *server.Server
	logs     *syncBuffer
	clients  map[string]testClient // by name
	secrets  []string              // every secret made, for the log test
}

// The clients every env has.
var envClients = []vault.Client{
	{Credential: vault.Credential{Name: "erp", Scopes: []string{"invoices:read", "invoices:write"}},
		GrantTypes: []string{token.GrantClientCredentials}, TokenTTL: time.Hour},
	{Credential: vault.Credential{Name: "narrow", Scopes: []string{"reports:read"}},
		GrantTypes: []string{token.GrantClientCredentials}, TokenTTL: 10 * time.Minute,
		Audience: []string{"https://api.example", "https://other.example"}},
	{Credential: vault.Credential{Name: "webapp", Scopes: []string{"profile"}},
		GrantTypes: []string{"authorization_code"}, RedirectURIs: []string{"https://app.example/cb"}, TokenTTL: time.Hour},
	{Credential: vault.Credential{Name: "gone", Scopes: []string{"x"}, ExpiresAt: new(serverEpoch.Add(-time.Hour))},
		GrantTypes: []string{token.GrantClientCredentials}, TokenTTL: time.Hour},
}

// newEnv makes an env whose server uses the env's clock and logs JSON at
// debug level into env.logs. adjust may change the server options.
func newEnv(t testing.TB, adjust ...func(*server.Options)) *env {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{
		path:     filepath.Join(t.TempDir(), "vault.db"),
		identity: id,
		clock:    &clock{now: serverEpoch},
		logs:     &syncBuffer{},
		clients:  map[string]testClient{},
	}
	key, err := token.GenerateSigningKey(token.ES256, serverEpoch)
	if err != nil {
		t.Fatal(err)
	}
	err = vault.Create(e.path, vault.CreateOptions{
		Recipients: []age.Recipient{id.Recipient()},
		Settings:   vault.Settings{KeyPrefix: "km", ClientSecretPrefix: "kmcs"},
		Options:    vault.Options{Now: e.clock.Now},
		Setup: func(tx *vault.Tx) error {
			if err := tx.AddSigningKey(token.ToVault(key), 30*24*time.Hour); err != nil {
				return err
			}
			for _, c := range envClients {
				secret := e.newSecret(t)
				if err := tx.CreateClient(&c, secret); err != nil {
					return err
				}
				e.clients[c.Name] = testClient{id: c.ID, secret: secret}
			}
			return nil
		},
	})
	if err != nil {
		t.Fatalf("create vault: %v", err)
	}
	e.vault = e.open(t)
	opts := server.Options{
		Vault:  e.vault,
		Issuer: testIssuer,
		Logger: slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:    e.clock.Now,
	}
	for _, f := range adjust {
		f(&opts)
	}
	e.srv, err = server.New(opts)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	// Stop the server as Run does when its context ends: the last writes,
	// and the end of the quota leases' background reservations, which
	// would otherwise write to the vault while its directory is removed.
	// (This cleanup runs before TempDir's, registered earlier.)
	t.Cleanup(func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := e.srv.Run(ctx); err != nil {
			t.Logf("stopping the server: %v", err)
		}
	})
	return e
}

// open returns another handle on the env's vault, as another process
// (the CLI) would have.
func (e *env) open(t testing.TB) *vault.Vault {
	t.Helper()
	v, err := vault.Open(e.path, vault.Options{Identities: []age.Identity{e.identity}, Now: e.clock.Now, LockTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("open vault: %v", err)
	}
	return v
}

func (e *env) newSecret(t testing.TB) string {
	t.Helper()
	s, err := apikey.Generate("kmcs")
	if err != nil {
		t.Fatal(err)
	}
	e.secrets = append(e.secrets, s)
	return s
}

// request is one HTTP request to the handler.
type request struct {
	method string // POST unless set
	path   string
	form   url.Values
	body   string // instead of form
	header http.Header
	remote string // RemoteAddr; a fixed address unless set
}

func (e *env) do(t testing.TB, req request) *httptest.ResponseRecorder {
	t.Helper()
	method := req.method
	if method == "" {
		method = http.MethodPost
	}
	body := req.body
	if req.form != nil {
		body = req.form.Encode()
	}
	r := httptest.NewRequest(method, req.path, strings.NewReader(body))
	if method == http.MethodPost {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, vs := range req.header {
		r.Header.Del(k)
		for _, v := range vs {
			r.Header.Add(k, v)
		}
	}
	r.RemoteAddr = "192.0.2.10:40000"
	if req.remote != "" {
		r.RemoteAddr = req.remote
	}
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, r)
	return w
}

// basic is the Authorization header of client_secret_basic.
func basic(id, secret string) http.Header {
	raw := url.QueryEscape(id) + ":" + url.QueryEscape(secret)
	return http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(raw))}}
}

func (e *env) basic(name string) http.Header {
	c := e.clients[name]
	return basic(c.id, c.secret)
}

// token gets an access token for the named client through /token.
func (e *env) token(t testing.TB, name string, form url.Values) string {
	t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("grant_type", "client_credentials")
	w := e.do(t, request{path: "/token", form: form, header: e.basic(name)})
	if w.Code != http.StatusOK {
		t.Fatalf("/token for %s: %d %s", name, w.Code, w.Body)
	}
	var resp token.Response
	decodeJSON(t, w.Body.Bytes(), &resp)
	return resp.AccessToken
}

func decodeJSON(t testing.TB, body []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("response is not JSON: %v: %s", err, body)
	}
}

// oauthErr is an RFC 6749 §5.2 error body.
type oauthErr struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// checkNoStore checks the caching headers of a token-bearing response.
func checkNoStore(t testing.TB, w *httptest.ResponseRecorder) {
	t.Helper()
	if got := w.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
	if got := w.Header().Get("Pragma"); got != "no-cache" {
		t.Errorf("Pragma = %q, want no-cache", got)
	}
}

// signingKey returns the vault's active signing key.
func (e *env) signingKey(t testing.TB) token.SigningKey {
	t.Helper()
	var k token.SigningKey
	err := e.vault.View(func(tx *vault.Tx) error {
		vk, err := tx.ActiveSigningKey()
		if err != nil {
			return err
		}
		k, err = token.FromVault(vk)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return k
}
