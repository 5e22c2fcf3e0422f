package server_test

import (
	"context"
	"crypto"
	"crypto/hmac"
	"io"
	"net/http/httptest"
	"path/filepath"

	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/keymint/keymint/server"
	"github.com/keymint/keymint/token"
	"github.com/keymint/keymint/vault"
)

func TestNewServerRefuses(t *testing.T) {
	e := newEnv(t)
	for _, iss := range []string{"", "keymint.test", "ftp://keymint.test", "https://keymint.test/?a=b", "https://keymint.test/#x", "https://user@keymint.test"} {
		if _, err := server.New(server.Options{Vault: e.vault, Issuer: iss}); err == nil {
			t.Errorf("server.New accepted issuer %q", iss)
		}
	}
	if _, err := server.New(server.Options{Issuer: testIssuer}); err == nil {
		t.Error("server.New accepted no vault")
	}

	// A vault without an active signing key cannot serve.
	empty := newVaultWithoutKey(t)
	_, err := server.New(server.Options{Vault: empty, Issuer: testIssuer})
	if !errors.Is(err, vault.ErrNotFound) || !strings.Contains(err.Error(), "signing key") {
		t.Errorf("server.New on a vault without a signing key: %v", err)
	}
}

func TestIssuerTrailingSlash(t *testing.T) {
	e := newEnv(t, func(o *server.Options) { o.Issuer = testIssuer + "/" })
	if got := e.srv.Issuer(); got != testIssuer {
		t.Errorf("Issuer() = %q, want %q", got, testIssuer)
	}
}

func TestTokenSuccess(t *testing.T) {
	e := newEnv(t)
	erp := e.clients["erp"]
	percentAll := func(s string) string {
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			b.WriteString("%" + strings.ToUpper(hex2(s[i])))
		}
		return b.String()
	}
	tests := []struct {
		name      string
		req       request
		wantScope string
		wantAud   []string
		wantTTL   time.Duration
	}{
		{
			name:      "basic",
			req:       request{form: url.Values{"grant_type": {"client_credentials"}}, header: e.basic("erp")},
			wantScope: "invoices:read invoices:write", wantAud: []string{testIssuer}, wantTTL: time.Hour,
		},
		{
			name: "post",
			req: request{form: url.Values{"grant_type": {"client_credentials"},
				"client_id": {erp.id}, "client_secret": {erp.secret}}},
			wantScope: "invoices:read invoices:write", wantAud: []string{testIssuer}, wantTTL: time.Hour,
		},
		{
			name: "basic form-encoded (RFC 6749 2.3.1)",
			req: request{form: url.Values{"grant_type": {"client_credentials"}},
				header: http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(percentAll(erp.id)+":"+percentAll(erp.secret)))}}},
			wantScope: "invoices:read invoices:write", wantAud: []string{testIssuer}, wantTTL: time.Hour,
		},
		{
			name:      "basic scheme in lower case, body client_id that agrees",
			req:       request{form: url.Values{"grant_type": {"client_credentials"}, "client_id": {erp.id}}, header: http.Header{"Authorization": {"basic " + strings.TrimPrefix(e.basic("erp").Get("Authorization"), "Basic ")}}},
			wantScope: "invoices:read invoices:write", wantAud: []string{testIssuer}, wantTTL: time.Hour,
		},
		{
			name:      "scope subset, repeated scope counted once, empty parameters ignored",
			req:       request{form: url.Values{"grant_type": {"client_credentials"}, "scope": {" invoices:read  invoices:read"}, "audience": {""}, "client_secret": {""}}, header: e.basic("erp")},
			wantScope: "invoices:read", wantAud: []string{testIssuer}, wantTTL: time.Hour,
		},
		{
			name:      "any audience for a client without one",
			req:       request{form: url.Values{"grant_type": {"client_credentials"}, "audience": {"urn:erp"}}, header: e.basic("erp")},
			wantScope: "invoices:read invoices:write", wantAud: []string{"urn:erp"}, wantTTL: time.Hour,
		},
		{
			// token.Audiences, the rule the CLI's --audience follows too.
			name:      "an audience is taken whole: a comma does not split it; a repeated one counts once",
			req:       request{form: url.Values{"grant_type": {"client_credentials"}, "audience": {"urn:x,y", "urn:z", "urn:x,y"}}, header: e.basic("erp")},
			wantScope: "invoices:read invoices:write", wantAud: []string{"urn:x,y", "urn:z"}, wantTTL: time.Hour,
		},
		{
			name: "resource indicators among the client's audience",
			req: request{form: url.Values{"grant_type": {"client_credentials"},
				"resource": {"https://api.example", "https://other.example"}}, header: e.basic("narrow")},
			wantScope: "reports:read", wantAud: []string{"https://api.example", "https://other.example"}, wantTTL: 10 * time.Minute,
		},
		{
			name:      "the client's audience by default",
			req:       request{form: url.Values{"grant_type": {"client_credentials"}, "unknown": {"1", "2"}}, header: e.basic("narrow")},
			wantScope: "reports:read", wantAud: []string{"https://api.example", "https://other.example"}, wantTTL: 10 * time.Minute,
		},
	}
	ks := e.keySet(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.path = "/token"
			w := e.do(t, tt.req)
			if w.Code != http.StatusOK {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			checkNoStore(t, w)
			if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type = %q", ct)
			}
			var resp map[string]any
			decodeJSON(t, w.Body.Bytes(), &resp)
			if resp["token_type"] != "Bearer" || resp["scope"] != tt.wantScope || resp["expires_in"] != tt.wantTTL.Seconds() {
				t.Errorf("response = %v", resp)
			}
			// RFC 6749 §5.1's members, and nothing of keymint's own.
			if names := slices.Sorted(maps.Keys(resp)); !slices.Equal(names, []string{"access_token", "expires_in", "scope", "token_type"}) {
				t.Errorf("response members %q: %s", names, w.Body)
			}
			claims, err := ks.Verify(resp["access_token"].(string), e.clock.Now())
			if err != nil {
				t.Fatalf("token does not verify: %v", err)
			}
			if claims.Issuer != testIssuer || !slices.Equal(claims.Audience, tt.wantAud) ||
				strings.Join(claims.Scope, " ") != tt.wantScope || claims.ExpiresAt.Sub(claims.IssuedAt) != tt.wantTTL {
				t.Errorf("claims = %+v", claims)
			}
		})
	}
}

func hex2(b byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[b>>4], digits[b&15]})
}

// keySet is the key set the server publishes, read from /jwks.json.
func (e *env) keySet(t testing.TB) *token.KeySet {
	t.Helper()
	w := e.do(t, request{method: http.MethodGet, path: "/jwks.json"})
	if w.Code != http.StatusOK {
		t.Fatalf("/jwks.json: %d", w.Code)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	decodeJSON(t, w.Body.Bytes(), &set)
	ks, err := token.NewKeySet([]token.SigningKey{e.signingKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 1 {
		t.Fatalf("JWKS has %d keys, want 1", len(set.Keys))
	}
	return ks
}

// TestTokenBadInput: every malformed, unauthenticated or disallowed token
// request gets its RFC 6749 §5.2 error, uncached, and no token.
func TestTokenBadInput(t *testing.T) {
	e := newEnv(t)
	erp, narrow := e.clients["erp"], e.clients["narrow"]
	cc := func(extra ...string) url.Values {
		v := url.Values{"grant_type": {"client_credentials"}}
		for i := 0; i+1 < len(extra); i += 2 {
			v.Add(extra[i], extra[i+1])
		}
		return v
	}
	rawBasic := func(s string) http.Header {
		return http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(s))}}
	}
	big := strings.Repeat("a", 10<<20)
	tests := []struct {
		name   string
		req    request
		status int
		code   string
	}{
		{"unknown client", request{form: cc(), header: basic("cl_doesnotexist0000000000", erp.secret)}, 401, "invalid_client"},
		{"unknown client, post", request{form: cc("client_id", "nobody", "client_secret", erp.secret)}, 401, "invalid_client"},
		{"wrong secret", request{form: cc(), header: basic(erp.id, e.newSecret(t))}, 401, "invalid_client"},
		{"another client's secret", request{form: cc(), header: basic(erp.id, narrow.secret)}, 401, "invalid_client"},
		{"wrong secret, post", request{form: cc("client_id", erp.id, "client_secret", "kmcs_nope")}, 401, "invalid_client"},
		{"expired client", request{form: cc(), header: e.basic("gone")}, 401, "invalid_client"},
		{"no credentials", request{form: cc()}, 401, "invalid_client"},
		{"client_id without secret", request{form: cc("client_id", erp.id)}, 401, "invalid_client"},
		{"both Basic and body credentials", request{form: cc("client_id", erp.id, "client_secret", erp.secret), header: e.basic("erp")}, 400, "invalid_request"},
		{"Basic and a body secret alone", request{form: cc("client_secret", erp.secret), header: e.basic("erp")}, 400, "invalid_request"},
		{"body client_id differs from Basic", request{form: cc("client_id", narrow.id), header: e.basic("erp")}, 400, "invalid_request"},
		{"client_secret without client_id", request{form: cc("client_secret", erp.secret)}, 400, "invalid_request"},
		{"two Authorization headers", request{form: cc(), header: http.Header{"Authorization": {e.basic("erp").Get("Authorization"), e.basic("erp").Get("Authorization")}}}, 400, "invalid_request"},
		{"malformed Basic: not base64", request{form: cc(), header: http.Header{"Authorization": {"Basic %%%"}}}, 401, "invalid_client"},
		{"malformed Basic: no colon", request{form: cc(), header: rawBasic(erp.id + erp.secret)}, 401, "invalid_client"},
		{"malformed Basic: bad escape", request{form: cc(), header: rawBasic(erp.id + ":%zz")}, 401, "invalid_client"},
		{"malformed Basic: empty secret", request{form: cc(), header: rawBasic(erp.id + ":")}, 401, "invalid_client"},
		{"malformed Basic: empty id", request{form: cc(), header: rawBasic(":" + erp.secret)}, 401, "invalid_client"},
		{"malformed Basic: no credentials", request{form: cc(), header: http.Header{"Authorization": {"Basic"}}}, 401, "invalid_client"},
		{"Bearer instead of Basic", request{form: cc(), header: http.Header{"Authorization": {"Bearer " + erp.secret}}}, 401, "invalid_client"},
		{"missing grant_type", request{form: url.Values{"scope": {"invoices:read"}}, header: e.basic("erp")}, 400, "invalid_request"},
		{"empty grant_type", request{form: url.Values{"grant_type": {""}}, header: e.basic("erp")}, 400, "invalid_request"},
		{"duplicated grant_type", request{form: url.Values{"grant_type": {"client_credentials", "client_credentials"}}, header: e.basic("erp")}, 400, "invalid_request"},
		{"duplicated scope", request{form: cc("scope", "invoices:read", "scope", "invoices:write"), header: e.basic("erp")}, 400, "invalid_request"},
		{"duplicated client_id", request{form: cc("client_id", erp.id, "client_id", erp.id, "client_secret", erp.secret)}, 400, "invalid_request"},
		{"duplicated client_secret", request{form: cc("client_id", erp.id, "client_secret", erp.secret, "client_secret", erp.secret)}, 400, "invalid_request"},
		{"unknown grant", request{form: url.Values{"grant_type": {"password"}, "username": {"u"}, "password": {"p"}}, header: e.basic("erp")}, 400, "unsupported_grant_type"},
		{"unknown refresh token", request{form: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}, header: e.basic("erp")}, 400, "invalid_grant"},
		{"password grant", request{form: url.Values{"grant_type": {"password"}, "username": {"u"}, "password": {"p"}}, header: e.basic("erp")}, 400, "unsupported_grant_type"},
		{"grant the client lacks", request{form: cc(), header: e.basic("webapp")}, 400, "unauthorized_client"},
		{"scope the client lacks", request{form: cc("scope", "invoices:read admin"), header: e.basic("erp")}, 400, "invalid_scope"},
		{"malformed scope", request{form: cc("scope", `invoices:read "x"`), header: e.basic("erp")}, 400, "invalid_scope"},
		{"audience the client lacks", request{form: cc("audience", "https://evil.example"), header: e.basic("narrow")}, 400, "invalid_target"},
		{"two of the client's audiences in one value", request{form: cc("audience", "https://api.example,https://other.example"), header: e.basic("narrow")}, 400, "invalid_target"},
		{"resource that is not absolute", request{form: cc("resource", "/api"), header: e.basic("erp")}, 400, "invalid_target"},
		{"resource with a fragment", request{form: cc("resource", "https://api.example/#x"), header: e.basic("erp")}, 400, "invalid_target"},
		{"parameters in the URL", request{path: "/token?client_secret=" + erp.secret, form: cc(), header: e.basic("erp")}, 400, "invalid_request"},
		{"JSON body", request{body: `{"grant_type":"client_credentials"}`, header: mergeHeaders(e.basic("erp"), http.Header{"Content-Type": {"application/json"}})}, 400, "invalid_request"},
		{"no Content-Type", request{form: cc(), header: mergeHeaders(e.basic("erp"), http.Header{"Content-Type": nil})}, 400, "invalid_request"},
		{"malformed form", request{body: "grant_type=client_credentials&scope=%zz", header: e.basic("erp")}, 400, "invalid_request"},
		{"semicolon in form", request{body: "grant_type=client_credentials;scope=x", header: e.basic("erp")}, 400, "invalid_request"},
		{"10 MB body", request{body: "grant_type=client_credentials&pad=" + big, header: e.basic("erp")}, 413, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.req.path == "" {
				tt.req.path = "/token"
			}
			start := time.Now()
			w := e.do(t, tt.req)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %s", d)
			}
			checkNoStore(t, w)
			var body oauthErr
			decodeJSON(t, w.Body.Bytes(), &body)
			if body.Error != tt.code {
				t.Errorf("error = %q, want %q (%s)", body.Error, tt.code, body.Description)
			}
			if strings.Contains(w.Body.String(), "access_token") {
				t.Errorf("error response carries a token: %s", w.Body)
			}
			for _, c := range body.Description {
				if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
					t.Errorf("error_description has %q, outside RFC 6749 §5.2's set", c)
				}
			}
			auth := w.Header().Get("WWW-Authenticate")
			if (tt.status == 401) != strings.HasPrefix(auth, `Basic realm="keymint"`) {
				t.Errorf("status %d with WWW-Authenticate %q", w.Code, auth)
			}
		})
	}
}

func mergeHeaders(hs ...http.Header) http.Header {
	out := http.Header{}
	for _, h := range hs {
		for k, v := range h {
			out[k] = v
		}
	}
	return out
}

// TestBodyLimitWithoutLength: a body sent without Content-Length (chunked)
// is cut at the cap too.
func TestBodyLimitWithoutLength(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{"/token", "/introspect", "/revoke"} {
		r, w := chunkedRequest(path, strings.Repeat("x", 10<<20))
		r.Header = e.basic("erp")
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		e.srv.ServeHTTP(w, r)
		if w.Code != http.StatusRequestEntityTooLarge {
			t.Errorf("%s: status %d, want 413", path, w.Code)
		}
	}
}

func TestMethodNotAllowed(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{"/token", "/introspect", "/revoke"} {
		if w := e.do(t, request{method: http.MethodGet, path: path}); w.Code != http.StatusMethodNotAllowed {
			t.Errorf("GET %s: %d", path, w.Code)
		}
	}
	if w := e.do(t, request{path: "/jwks.json", form: url.Values{}}); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /jwks.json: %d", w.Code)
	}
	if w := e.do(t, request{method: http.MethodGet, path: "/nope"}); w.Code != http.StatusNotFound {
		t.Errorf("GET /nope: %d", w.Code)
	}
}

func TestMetadata(t *testing.T) {
	e := newEnv(t)
	kid := e.signingKey(t).ID
	for _, path := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"} {
		t.Run(path, func(t *testing.T) {
			w := e.do(t, request{method: http.MethodGet, path: path})
			if w.Code != http.StatusOK {
				t.Fatalf("status %d", w.Code)
			}
			var md map[string]any
			decodeJSON(t, w.Body.Bytes(), &md)
			want := map[string]any{
				"issuer":                 testIssuer,
				"authorization_endpoint": testIssuer + "/authorize",
				"authorization_response_iss_parameter_supported": true,
				"token_endpoint":         testIssuer + "/token",
				"jwks_uri":               testIssuer + "/jwks.json",
				"introspection_endpoint": testIssuer + "/introspect",
				"revocation_endpoint":    testIssuer + "/revoke",
			}
			for k, v := range want {
				if md[k] != v {
					t.Errorf("%s = %v, want %v", k, md[k], v)
				}
			}
			list := func(k string) []string {
				raw, ok := md[k].([]any)
				if !ok {
					t.Errorf("%s is missing or not an array: %v", k, md[k])
				}
				var out []string
				for _, v := range raw {
					out = append(out, v.(string))
				}
				return out
			}
			if got := list("grant_types_supported"); !slices.Equal(got, []string{"client_credentials", "authorization_code", "refresh_token"}) {
				t.Errorf("grant_types_supported = %v", got)
			}
			// Public clients authenticate with nothing at the token
			// endpoint; introspection and revocation need a secret.
			if got := list("token_endpoint_auth_methods_supported"); !slices.Equal(got, []string{"client_secret_basic", "client_secret_post", "none"}) {
				t.Errorf("token_endpoint_auth_methods_supported = %v", got)
			}
			if got := list("introspection_endpoint_auth_methods_supported"); !slices.Equal(got, []string{"client_secret_basic", "client_secret_post"}) {
				t.Errorf("introspection_endpoint_auth_methods_supported = %v", got)
			}
			// A public client may revoke what it holds.
			if got := list("revocation_endpoint_auth_methods_supported"); !slices.Equal(got, []string{"client_secret_basic", "client_secret_post", "none"}) {
				t.Errorf("revocation_endpoint_auth_methods_supported = %v", got)
			}
			if got := list("response_types_supported"); !slices.Equal(got, []string{"code"}) {
				t.Errorf("response_types_supported = %v, want [code]", got)
			}
			if got := list("code_challenge_methods_supported"); !slices.Equal(got, []string{"S256"}) {
				t.Errorf("code_challenge_methods_supported = %v, want [S256]", got)
			}
			_, hasAlgs := md["id_token_signing_alg_values_supported"]
			if oidc := strings.Contains(path, "openid"); oidc {
				if got := list("id_token_signing_alg_values_supported"); !slices.Equal(got, []string{"ES256"}) {
					t.Errorf("id_token_signing_alg_values_supported = %v", got)
				}
				if got := list("subject_types_supported"); !slices.Equal(got, []string{"public"}) {
					t.Errorf("subject_types_supported = %v", got)
				}
				if md["userinfo_endpoint"] != testIssuer+"/userinfo" {
					t.Errorf("userinfo_endpoint = %v", md["userinfo_endpoint"])
				}
			} else if hasAlgs {
				t.Error("RFC 8414 document has OpenID members")
			}
		})
	}
	w := e.do(t, request{method: http.MethodGet, path: "/jwks.json"})
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	decodeJSON(t, w.Body.Bytes(), &set)
	if len(set.Keys) != 1 || set.Keys[0]["kid"] != kid || set.Keys[0]["alg"] != "ES256" || set.Keys[0]["use"] != "sig" {
		t.Errorf("JWKS = %s", w.Body)
	}
	if _, private := set.Keys[0]["d"]; private {
		t.Fatal("JWKS publishes a private key")
	}
	if w := e.do(t, request{method: http.MethodGet, path: "/healthz"}); w.Code != http.StatusOK {
		t.Errorf("/healthz: %d", w.Code)
	}
}

// introspect asks /introspect about token as the named client.
func (e *env) introspect(t testing.TB, as, token string) map[string]any {
	t.Helper()
	w := e.do(t, request{path: "/introspect", form: url.Values{"token": {token}}, header: e.basic(as)})
	if w.Code != http.StatusOK {
		t.Fatalf("/introspect: %d %s", w.Code, w.Body)
	}
	checkNoStore(t, w)
	var resp map[string]any
	decodeJSON(t, w.Body.Bytes(), &resp)
	return resp
}

func TestIntrospectActive(t *testing.T) {
	e := newEnv(t)
	token := e.token(t, "narrow", url.Values{"resource": {"https://api.example"}})
	got := e.introspect(t, "erp", token) // any client may introspect
	want := map[string]any{
		"active":     true,
		"scope":      "reports:read",
		"client_id":  e.clients["narrow"].id,
		"sub":        e.clients["narrow"].id,
		"aud":        "https://api.example",
		"iss":        testIssuer,
		"token_type": "Bearer",
		"iat":        float64(serverEpoch.Unix()),
		"exp":        float64(serverEpoch.Add(10 * time.Minute).Unix()),
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if jti, _ := got["jti"].(string); jti == "" {
		t.Error("no jti")
	}
	// Two audiences come back as an array.
	got = e.introspect(t, "erp", e.token(t, "narrow", nil))
	if aud, ok := got["aud"].([]any); !ok || len(aud) != 2 {
		t.Errorf("aud = %v", got["aud"])
	}
	// Post authentication works here too.
	erp := e.clients["erp"]
	w := e.do(t, request{path: "/introspect", form: url.Values{"token": {token}, "token_type_hint": {"access_token"},
		"client_id": {erp.id}, "client_secret": {erp.secret}}})
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"active":true`) {
		t.Errorf("post: %d %s", w.Code, w.Body)
	}
}

// TestIntrospectInactive: anything that is not a valid token of this
// issuer is {"active":false}, and nothing more.
func TestIntrospectInactive(t *testing.T) {
	e := newEnv(t)
	key := e.signingKey(t)
	signer, err := token.NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	valid := e.token(t, "erp", nil)
	parts := strings.Split(valid, ".")
	claims := func() token.Claims {
		return token.Claims{Issuer: testIssuer, Subject: e.clients["erp"].id, Audience: []string{testIssuer},
			IssuedAt: serverEpoch, ExpiresAt: serverEpoch.Add(time.Hour), ID: token.NewJTI(), ClientID: e.clients["erp"].id}
	}
	sign := func(c token.Claims) string {
		tok, err := signer.Sign(c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	otherIssuer := claims()
	otherIssuer.Issuer = "https://elsewhere.example"
	expired := claims()
	expired.IssuedAt, expired.ExpiresAt = serverEpoch.Add(-2*time.Hour), serverEpoch.Add(-time.Hour)
	removedClient := claims()
	removedClient.ClientID, removedClient.Subject = "cl_removed00000000000000", "cl_removed00000000000000"
	expiredClient := claims()
	expiredClient.ClientID = e.clients["gone"].id

	// Forgeries a careless verifier would accept.
	header := func(alg string) string {
		return b64url(`{"alg":"` + alg + `","kid":"` + key.ID + `","typ":"at+jwt"}`)
	}
	payload := parts[1]
	public, err := x509.MarshalPKIXPublicKey(mustPublic(t, key))
	if err != nil {
		t.Fatal(err)
	}
	hs256 := func(secret []byte) string {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(header("HS256") + "." + payload))
		return header("HS256") + "." + payload + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: public})
	jwk := e.do(t, request{method: http.MethodGet, path: "/jwks.json"}).Body.Bytes()

	tampered := []byte(payload)
	tampered[len(tampered)/2] ^= 1

	tests := map[string]string{
		"garbage":                               "not a token",
		"empty parts":                           "..",
		"tampered payload":                      parts[0] + "." + string(tampered) + "." + parts[2],
		"signature of another token":            parts[0] + "." + strings.Split(sign(claims()), ".")[1] + "." + parts[2],
		"expired":                               sign(expired),
		"another issuer":                        sign(otherIssuer),
		"client removed":                        sign(removedClient),
		"client expired":                        sign(expiredClient),
		"alg none":                              header("none") + "." + payload + ".",
		"alg none with the old signature":       header("none") + "." + payload + "." + parts[2],
		"HS256 keyed with the public key (DER)": hs256(public),
		"HS256 keyed with the public key (PEM)": hs256(pemKey),
		"HS256 keyed with the JWKS":             hs256(jwk),
	}
	for name, token := range tests {
		t.Run(name, func(t *testing.T) {
			got := e.introspect(t, "erp", token)
			if len(got) != 1 || got["active"] != false {
				t.Errorf("introspection = %v, want only active false", got)
			}
		})
	}

	t.Run("expired by the clock", func(t *testing.T) {
		e.clock.Advance(time.Hour)
		defer e.clock.Advance(-time.Hour)
		if got := e.introspect(t, "erp", valid); got["active"] != false {
			t.Errorf("introspection an hour later = %v", got)
		}
	})
}

func mustPublic(t testing.TB, k token.SigningKey) any {
	t.Helper()
	parsed, err := x509.ParsePKCS8PrivateKey(k.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	return parsed.(crypto.Signer).Public()
}

func b64url(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestIntrospectBadInput(t *testing.T) {
	e := newEnv(t)
	token := e.token(t, "erp", nil)
	tests := []struct {
		name   string
		req    request
		status int
		code   string
	}{
		{"no client authentication", request{form: url.Values{"token": {token}}}, 401, "invalid_client"},
		{"wrong secret", request{form: url.Values{"token": {token}}, header: basic(e.clients["erp"].id, e.newSecret(t))}, 401, "invalid_client"},
		{"missing token", request{form: url.Values{}, header: e.basic("erp")}, 400, "invalid_request"},
		{"repeated token", request{form: url.Values{"token": {token, token}}, header: e.basic("erp")}, 400, "invalid_request"},
		{"token in the URL", request{path: "/introspect?token=" + token, form: url.Values{}, header: e.basic("erp")}, 400, "invalid_request"},
		{"both credentials", request{form: url.Values{"token": {token}, "client_id": {e.clients["erp"].id}, "client_secret": {e.clients["erp"].secret}}, header: e.basic("erp")}, 400, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.req.path == "" {
				tt.req.path = "/introspect"
			}
			w := e.do(t, tt.req)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			checkNoStore(t, w)
			var body oauthErr
			decodeJSON(t, w.Body.Bytes(), &body)
			if body.Error != tt.code || strings.Contains(w.Body.String(), "active") {
				t.Errorf("body = %s, want error %s", w.Body, tt.code)
			}
		})
	}
}

func TestRevoke(t *testing.T) {
	e := newEnv(t)
	token := e.token(t, "erp", nil)
	other := e.token(t, "narrow", nil)
	revoke := func(as, token string) int {
		t.Helper()
		w := e.do(t, request{path: "/revoke", form: url.Values{"token": {token}, "token_type_hint": {"access_token"}}, header: e.basic(as)})
		checkNoStore(t, w)
		return w.Code
	}
	// A client may not revoke another's token.
	if code := revoke("erp", other); code != http.StatusBadRequest {
		t.Errorf("revoking another client's token: %d", code)
	}
	if got := e.introspect(t, "erp", other); got["active"] != true {
		t.Errorf("another client's token was revoked: %v", got)
	}
	// Unknown, invalid and expired tokens: 200, nothing recorded.
	for _, bogus := range []string{"nope", strings.ToUpper(token), e.tokenAt(t, "erp", serverEpoch.Add(-2*time.Hour))} {
		if code := revoke("erp", bogus); code != http.StatusOK {
			t.Errorf("revoking an invalid token: %d", code)
		}
	}
	var revs []vault.Revocation
	readRevs := func() {
		t.Helper()
		if err := e.open(t).View(func(tx *vault.Tx) (err error) { revs, err = tx.Revocations(); return err }); err != nil {
			t.Fatal(err)
		}
	}
	if readRevs(); len(revs) != 0 {
		t.Errorf("invalid tokens recorded: %v", revs)
	}

	if code := revoke("erp", token); code != http.StatusOK {
		t.Fatalf("revoke: %d", code)
	}
	if got := e.introspect(t, "narrow", token); got["active"] != false {
		t.Errorf("revoked token introspects as %v", got)
	}
	if code := revoke("erp", token); code != http.StatusOK {
		t.Errorf("revoking again: %d", code)
	}
	// Recorded in the vault, where `token verify` and other servers see it.
	readRevs()
	claims, err := e.keySet(t).Verify(token, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(revs) != 1 || revs[0].JTI != claims.ID || revs[0].ClientID != e.clients["erp"].id || !revs[0].ExpiresAt.Equal(claims.ExpiresAt) {
		t.Errorf("revocations = %+v", revs)
	}
	var revoked bool
	if err := e.open(t).View(func(tx *vault.Tx) (err error) { revoked, err = tx.Revoked(claims.ID); return err }); err != nil || !revoked {
		t.Errorf("tx.Revoked = %v, %v", revoked, err)
	}
	// A new server on the vault refuses it too, and so does this one after
	// a reload.
	fresh, err := server.New(server.Options{Vault: e.open(t), Issuer: testIssuer, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	e2 := *e
	e2.srv = fresh
	if got := e2.introspect(t, "erp", token); got["active"] != false {
		t.Errorf("a new server finds the revoked token %v", got)
	}
	if err := e.srv.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := e.introspect(t, "erp", token); got["active"] != false {
		t.Errorf("after reload the revoked token is %v", got)
	}

	// Unauthenticated or malformed revocation requests fail.
	if w := e.do(t, request{path: "/revoke", form: url.Values{"token": {other}}}); w.Code != 401 {
		t.Errorf("unauthenticated revoke: %d", w.Code)
	}
	if w := e.do(t, request{path: "/revoke", form: url.Values{}, header: e.basic("narrow")}); w.Code != 400 {
		t.Errorf("revoke without token: %d", w.Code)
	}
	if got := e.introspect(t, "erp", other); got["active"] != true {
		t.Errorf("failed revocations revoked: %v", got)
	}
}

// tokenAt gets a token for the named client issued at t0.
func (e *env) tokenAt(t testing.TB, name string, t0 time.Time) string {
	t.Helper()
	saved := e.clock.Now()
	e.clock.Advance(t0.Sub(saved))
	defer e.clock.Advance(saved.Sub(t0))
	return e.token(t, name, nil)
}

// newVaultWithoutKey returns a vault with no signing key at all.
func newVaultWithoutKey(t testing.TB) *vault.Vault {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "vault.db")
	if err := vault.Create(path, vault.CreateOptions{Recipients: []age.Recipient{id.Recipient()}}); err != nil {
		t.Fatal(err)
	}
	v, err := vault.Open(path, vault.Options{Identities: []age.Identity{id}})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// chunkedRequest is a POST whose body has no declared length.
func chunkedRequest(path, body string) (*http.Request, *httptest.ResponseRecorder) {
	r := httptest.NewRequest(http.MethodPost, path, io.MultiReader(strings.NewReader(body)))
	r.RemoteAddr = "192.0.2.11:40000"
	return r, httptest.NewRecorder()
}

// TestSigningKeyRotationServed: after a rotation the server signs with the
// new key, publishes both, and keeps accepting the old key's tokens until
// the old key's publication ends, which it notices without a vault write.
func TestSigningKeyRotationServed(t *testing.T) {
	e := newEnv(t, func(o *server.Options) { o.ReloadInterval = 10 * time.Millisecond })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.srv.Run(ctx) }()
	defer func() { cancel(); <-done }()

	old := e.token(t, "erp", nil)
	oldKID := e.signingKey(t).ID
	next, err := token.GenerateSigningKey(token.EdDSA, serverEpoch)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.open(t).Update(func(tx *vault.Tx) error { return tx.AddSigningKey(token.ToVault(next), 2*time.Hour) }); err != nil {
		t.Fatal(err)
	}
	jwksKIDs := func() []string {
		var set struct {
			Keys []struct {
				Kid string `json:"kid"`
			} `json:"keys"`
		}
		decodeJSON(t, e.do(t, request{method: http.MethodGet, path: "/jwks.json"}).Body.Bytes(), &set)
		var out []string
		for _, k := range set.Keys {
			out = append(out, k.Kid)
		}
		slices.Sort(out)
		return out
	}
	want := []string{oldKID, next.ID}
	slices.Sort(want)
	waitFor(t, "both keys published", func() bool { return slices.Equal(jwksKIDs(), want) })

	fresh := e.token(t, "erp", nil)
	if got := decodeHeader(t, fresh)["kid"]; got != next.ID {
		t.Errorf("new token's kid = %v, want the new key %s", got, next.ID)
	}
	if got := e.introspect(t, "erp", old); got["active"] != true {
		t.Errorf("old key's token after rotation: %v", got)
	}
	var md map[string]any
	decodeJSON(t, e.do(t, request{method: http.MethodGet, path: "/.well-known/openid-configuration"}).Body.Bytes(), &md)
	if algs := fmt.Sprint(md["id_token_signing_alg_values_supported"]); !strings.Contains(algs, "EdDSA") || !strings.Contains(algs, "ES256") {
		t.Errorf("algs = %s", algs)
	}

	// Past the old key's publication, it leaves JWKS with no vault write.
	e.clock.Advance(2*time.Hour + time.Second)
	waitFor(t, "the old key unpublished", func() bool { return slices.Equal(jwksKIDs(), []string{next.ID}) })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 2s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func decodeHeader(t *testing.T, token string) map[string]any {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	decodeJSON(t, raw, &h)
	return h
}
