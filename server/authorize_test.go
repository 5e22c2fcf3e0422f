package server_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keymint/keymint/password"
	"github.com/keymint/keymint/vault"
)

// The authorization-code flow through the whole handler, without the
// network: a browser that keeps cookies, the pages' forms, the redirects,
// and the token endpoint. Real browsers and client libraries run the same
// flow against a listening server in cmd/keymint's tests.

const (
	flowVerifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	flowPassword = "correct horse battery"
	flowRedirect = "https://app.example/cb"
)

func challengeOf(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// browser is a cookie-keeping user agent over env.
type browser struct {
	e       *env
	cookies map[string]string
	remote  string
}

func newBrowser(e *env) *browser {
	return &browser{e: e, cookies: map[string]string{}, remote: "198.51.100.7:50000"}
}

func (b *browser) send(t *testing.T, method, target string, form url.Values) *httptest.ResponseRecorder {
	t.Helper()
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	r := httptest.NewRequest(method, target, body)
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range b.cookies {
		r.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	r.RemoteAddr = b.remote
	w := httptest.NewRecorder()
	b.e.srv.ServeHTTP(w, r)
	for _, c := range w.Result().Cookies() {
		if c.MaxAge < 0 {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c.Value
		}
	}
	return w
}

var hiddenField = regexp.MustCompile(`name="(flow|csrf)" value="([^"]*)"`)

// formOf reads a page's hidden fields.
func formOf(t *testing.T, page string) url.Values {
	t.Helper()
	form := url.Values{}
	for _, m := range hiddenField.FindAllStringSubmatch(page, -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	if form.Get("flow") == "" || form.Get("csrf") == "" {
		t.Fatalf("no flow or csrf field in the page:\n%s", page)
	}
	return form
}

func authorizeURL(params map[string]string) string {
	q := url.Values{
		"response_type": {"code"}, "client_id": {""}, "redirect_uri": {flowRedirect},
		"scope": {"openid profile"}, "state": {"st-123"}, "nonce": {"n-456"},
		"code_challenge": {challengeOf(flowVerifier)}, "code_challenge_method": {"S256"},
	}
	for k, v := range params {
		if v == "" {
			q.Del(k)
		} else {
			q.Set(k, v)
		}
	}
	return "/authorize?" + q.Encode()
}

// addUser stores a user with flowPassword, hashed cheaply.
func (e *env) addUser(t *testing.T, name string) *vault.User {
	t.Helper()
	hash, err := password.Hash(flowPassword, password.Params{Memory: 64, Time: 1, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	u := &vault.User{Name: name, DisplayName: "Test User", Email: name + "@example.com", PasswordHash: hash}
	if err := e.vault.Update(func(tx *vault.Tx) error { return tx.CreateUser(u) }); err != nil {
		t.Fatal(err)
	}
	return u
}

// callback reads the redirect to the client: its query.
func callback(t *testing.T, w *httptest.ResponseRecorder) url.Values {
	t.Helper()
	if w.Code != http.StatusSeeOther {
		t.Fatalf("status %d, want a redirect to the client: %s", w.Code, w.Body)
	}
	loc, err := url.Parse(w.Header().Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), flowRedirect+"?") {
		t.Fatalf("redirect to %q, want %s", w.Header().Get("Location"), flowRedirect)
	}
	return loc.Query()
}

// signInAndConsent goes from the authorization request to the code,
// consenting if asked.
func signInAndConsent(t *testing.T, b *browser, clientID string) url.Values {
	t.Helper()
	w := b.send(t, http.MethodGet, authorizeURL(map[string]string{"client_id": clientID}), nil)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `name="password"`) {
		t.Fatalf("authorize: status %d, want the sign-in page: %s", w.Code, w.Body)
	}
	form := formOf(t, w.Body.String())
	form.Set("username", "u1")
	form.Set("password", flowPassword)
	w = b.send(t, http.MethodPost, "/authorize/signin", form)
	if w.Code == http.StatusSeeOther {
		return callback(t, w) // granted before: no consent asked
	}
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `value="allow"`) {
		t.Fatalf("sign-in: status %d, want the consent page: %s", w.Code, w.Body)
	}
	form = formOf(t, w.Body.String())
	form.Set("decision", "allow")
	return callback(t, b.send(t, http.MethodPost, "/authorize/consent", form))
}

type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
	Scope        string `json:"scope"`
	Error        string `json:"error"`
}

func (e *env) tokenRequest(t *testing.T, client string, form url.Values) (int, tokenResponse) {
	t.Helper()
	w := e.do(t, request{path: "/token", form: form, header: e.basic(client)})
	var out tokenResponse
	decodeJSON(t, w.Body.Bytes(), &out)
	return w.Code, out
}

func (e *env) introspectActive(t *testing.T, tok string) bool {
	t.Helper()
	e.reload(t)
	w := e.do(t, request{path: "/introspect", form: url.Values{"token": {tok}}, header: e.basic("erp")})
	var out struct {
		Active bool `json:"active"`
	}
	decodeJSON(t, w.Body.Bytes(), &out)
	return out.Active
}

func TestAuthorizationCodeFlow(t *testing.T) {
	e := newEnv(t)
	u := e.addUser(t, "u1")
	webapp := e.clients["webapp"]
	b := newBrowser(e)

	q := signInAndConsent(t, b, webapp.id)
	if q.Get("state") != "st-123" || q.Get("iss") != testIssuer || q.Get("code") == "" {
		t.Fatalf("callback %v: want code, state and iss", q)
	}
	exchange := url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {flowRedirect}, "code_verifier": {flowVerifier}}
	status, tok := e.tokenRequest(t, "webapp", exchange)
	if status != http.StatusOK || tok.AccessToken == "" || !strings.HasPrefix(tok.RefreshToken, "kmrt_") || tok.IDToken == "" {
		t.Fatalf("code exchange: %d %+v", status, tok)
	}
	id := decodeJWT(t, tok.IDToken)
	if id["sub"] != u.ID || id["aud"] != webapp.id || id["nonce"] != "n-456" || id["name"] != "Test User" || id["auth_time"] == nil || id["at_hash"] == nil {
		t.Errorf("id_token claims %v", id)
	}
	access := decodeJWT(t, tok.AccessToken)
	if access["sub"] != u.ID || access["client_id"] != webapp.id || access["scope"] != "openid profile" {
		t.Errorf("access token claims %v", access)
	}
	if !e.introspectActive(t, tok.AccessToken) {
		t.Fatal("the access token is not active")
	}

	// UserInfo.
	w := e.do(t, request{method: http.MethodGet, path: "/userinfo", header: http.Header{"Authorization": {"Bearer " + tok.AccessToken}}})
	var info map[string]any
	decodeJSON(t, w.Body.Bytes(), &info)
	if w.Code != http.StatusOK || info["sub"] != u.ID || info["preferred_username"] != "u1" || info["email"] != nil {
		t.Errorf("userinfo: %d %v (no email: the email scope was not granted)", w.Code, info)
	}

	// A second authorization with the same scopes asks nothing: the grant
	// is remembered and the session still there.
	q2 := callback(t, b.send(t, http.MethodGet, authorizeURL(map[string]string{"client_id": webapp.id}), nil))
	if q2.Get("code") == "" || q2.Get("code") == q.Get("code") {
		t.Fatalf("second authorization: %v", q2)
	}
	// More scopes ask again, for the difference.
	w = b.send(t, http.MethodGet, authorizeURL(map[string]string{"client_id": webapp.id, "scope": "openid profile email"}), nil)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `value="allow"`) {
		t.Fatalf("more scopes: status %d, want the consent page", w.Code)
	}

	// Refresh: rotates; the old one presented again revokes the family.
	status, r1 := e.tokenRequest(t, "webapp", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
	if status != http.StatusOK || r1.RefreshToken == "" || r1.RefreshToken == tok.RefreshToken || r1.AccessToken == "" {
		t.Fatalf("refresh: %d %+v", status, r1)
	}
	if status, out := e.tokenRequest(t, "webapp", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}); status != http.StatusBadRequest || out.Error != "invalid_grant" {
		t.Fatalf("reused refresh token: %d %+v", status, out)
	}
	if status, out := e.tokenRequest(t, "webapp", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r1.RefreshToken}}); status != http.StatusBadRequest || out.Error != "invalid_grant" {
		t.Fatalf("refresh token of a revoked family: %d %+v", status, out)
	}

	// The code again: refused, and what it gave is revoked.
	if status, out := e.tokenRequest(t, "webapp", exchange); status != http.StatusBadRequest || out.Error != "invalid_grant" {
		t.Fatalf("reused code: %d %+v", status, out)
	}
	if e.introspectActive(t, tok.AccessToken) {
		t.Error("the access token of a reused code is still active")
	}

	// Revoking the grant ends the user's tokens.
	if !e.introspectActive(t, r1.AccessToken) {
		t.Fatal("the refreshed access token is not active")
	}
	err := e.vault.Update(func(tx *vault.Tx) error {
		g, err := tx.GrantFor(u.ID, webapp.id)
		if err != nil {
			return err
		}
		return tx.RevokeGrant(g.ID)
	})
	if err != nil {
		t.Fatal(err)
	}
	if e.introspectActive(t, r1.AccessToken) {
		t.Error("an access token of a revoked grant is active")
	}
}

func decodeJWT(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

// TestAuthorizeRefusals: each bad request gets the answer the specs ask:
// an error page (never a redirect) for a bad client or redirect URI, the
// error at the client's redirect URI otherwise.
func TestAuthorizeRefusals(t *testing.T) {
	e := newEnv(t)
	e.addUser(t, "u1")
	webapp := e.clients["webapp"].id
	for _, tt := range []struct {
		name   string
		params map[string]string
		page   int    // status of an error page; 0 when redirected
		error  string // the error sent to the client
	}{
		{"unknown client", map[string]string{"client_id": "cl_nope"}, 400, ""},
		{"client_credentials client", map[string]string{"client_id": e.clients["erp"].id}, 400, ""},
		{"mismatched redirect", map[string]string{"client_id": webapp, "redirect_uri": "https://evil.example/cb"}, 400, ""},
		{"open redirect attempt", map[string]string{"client_id": webapp, "redirect_uri": "https://app.example/cb/../../evil"}, 400, ""},
		{"missing PKCE", map[string]string{"client_id": webapp, "code_challenge": "", "code_challenge_method": ""}, 0, "invalid_request"},
		{"plain PKCE", map[string]string{"client_id": webapp, "code_challenge": flowVerifier, "code_challenge_method": "plain"}, 0, "invalid_request"},
		{"scope beyond the client's", map[string]string{"client_id": webapp, "scope": "openid admin"}, 0, "invalid_scope"},
		{"token response type", map[string]string{"client_id": webapp, "response_type": "token"}, 0, "unsupported_response_type"},
		{"prompt=none without a session", map[string]string{"client_id": webapp, "prompt": "none"}, 0, "login_required"},
		{"prompt none with login", map[string]string{"client_id": webapp, "prompt": "none login"}, 0, "invalid_request"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newBrowser(e).send(t, http.MethodGet, authorizeURL(tt.params), nil)
			if tt.page != 0 {
				if w.Code != tt.page || w.Header().Get("Location") != "" {
					t.Fatalf("status %d, Location %q; want an error page %d", w.Code, w.Header().Get("Location"), tt.page)
				}
				if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
					t.Errorf("CSP %q", csp)
				}
				return
			}
			q := callback(t, w)
			if q.Get("error") != tt.error || q.Get("state") != "st-123" || q.Get("iss") != testIssuer {
				t.Errorf("callback %v, want error %s with state and iss", q, tt.error)
			}
		})
	}
}

// TestSignInAndConsentRefusals: forged or crossed forms, wrong passwords
// and their throttle, and codes misused at the token endpoint.
func TestSignInAndConsentRefusals(t *testing.T) {
	e := newEnv(t)
	e.addUser(t, "u1")
	webapp := e.clients["webapp"].id
	b := newBrowser(e)
	page := b.send(t, http.MethodGet, authorizeURL(map[string]string{"client_id": webapp}), nil).Body.String()
	form := formOf(t, page)

	t.Run("forged CSRF token", func(t *testing.T) {
		f := url.Values{"flow": {form.Get("flow")}, "csrf": {"forged"}, "username": {"u1"}, "password": {flowPassword}}
		if w := b.send(t, http.MethodPost, "/authorize/signin", f); w.Code != http.StatusForbidden {
			t.Errorf("status %d, want 403", w.Code)
		}
	})
	t.Run("form of another browser", func(t *testing.T) {
		other := newBrowser(e)
		f := url.Values{"flow": {form.Get("flow")}, "csrf": {form.Get("csrf")}, "username": {"u1"}, "password": {flowPassword}}
		if w := other.send(t, http.MethodPost, "/authorize/signin", f); w.Code != http.StatusForbidden {
			t.Errorf("status %d, want 403", w.Code)
		}
	})
	t.Run("wrong password and unknown user read alike", func(t *testing.T) {
		f := url.Values{"flow": {form.Get("flow")}, "csrf": {form.Get("csrf")}, "username": {"u1"}, "password": {"wrong password"}}
		wrong := b.send(t, http.MethodPost, "/authorize/signin", f)
		f.Set("username", "nobody")
		unknown := b.send(t, http.MethodPost, "/authorize/signin", f)
		if wrong.Code != http.StatusUnauthorized || unknown.Code != http.StatusUnauthorized {
			t.Fatalf("statuses %d and %d, want 401", wrong.Code, unknown.Code)
		}
		strip := func(s string) string { return hiddenField.ReplaceAllString(s, "") }
		if strip(wrong.Body.String()) != strip(strings.ReplaceAll(unknown.Body.String(), "nobody", "u1")) {
			t.Error("the pages of a wrong password and of an unknown user differ")
		}
	})
	t.Run("consent posted for another client", func(t *testing.T) {
		// Sign in through webapp's flow, then post its consent form with
		// the flow of another request: the CSRF token does not match.
		f := url.Values{"flow": {form.Get("flow")}, "csrf": {form.Get("csrf")}, "username": {"u1"}, "password": {flowPassword}}
		consent := formOf(t, b.send(t, http.MethodPost, "/authorize/signin", f).Body.String())
		otherFlow := formOf(t, newBrowser(e).send(t, http.MethodGet, authorizeURL(map[string]string{"client_id": webapp, "state": "other"}), nil).Body.String())
		crossed := url.Values{"flow": {otherFlow.Get("flow")}, "csrf": {consent.Get("csrf")}, "decision": {"allow"}}
		if w := b.send(t, http.MethodPost, "/authorize/consent", crossed); w.Code != http.StatusForbidden {
			t.Errorf("status %d, want 403", w.Code)
		}
		deny := url.Values{"flow": {consent.Get("flow")}, "csrf": {consent.Get("csrf")}, "decision": {"deny"}}
		if q := callback(t, b.send(t, http.MethodPost, "/authorize/consent", deny)); q.Get("error") != "access_denied" {
			t.Errorf("deny: %v", q)
		}
	})
	t.Run("throttle per user spares a browser the user signed in from", func(t *testing.T) {
		attacker := newBrowser(e)
		attacker.remote = "203.0.113.9:1234"
		var last int
		for i := 0; i < 8; i++ {
			af := formOf(t, attacker.send(t, http.MethodGet, authorizeURL(map[string]string{"client_id": webapp}), nil).Body.String())
			af.Set("username", "u1")
			af.Set("password", "guess")
			w := attacker.send(t, http.MethodPost, "/authorize/signin", af)
			last = w.Code
		}
		if last != http.StatusTooManyRequests {
			t.Errorf("after 8 wrong passwords: status %d, want 429", last)
		}
		// b signed in as u1 above: it is not locked out.
		bf := formOf(t, b.send(t, http.MethodGet, authorizeURL(map[string]string{"client_id": webapp, "prompt": "login"}), nil).Body.String())
		bf.Set("username", "u1")
		bf.Set("password", flowPassword)
		if w := b.send(t, http.MethodPost, "/authorize/signin", bf); w.Code != http.StatusOK {
			t.Errorf("the real user: status %d, want the consent page", w.Code)
		}
	})
}

func TestCodeExchangeRefusals(t *testing.T) {
	e := newEnv(t)
	e.addUser(t, "u1")
	webapp := e.clients["webapp"].id
	codeFor := func() string { return signInAndConsent(t, newBrowser(e), webapp).Get("code") }
	exchange := func(code string, change func(url.Values)) (int, tokenResponse) {
		f := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {flowRedirect}, "code_verifier": {flowVerifier}}
		change(f)
		return e.tokenRequest(t, "webapp", f)
	}
	for _, tt := range []struct {
		name   string
		change func(url.Values)
	}{
		{"wrong verifier", func(f url.Values) { f.Set("code_verifier", strings.Repeat("a", 43)) }},
		{"no verifier", func(f url.Values) { f.Del("code_verifier") }},
		{"other redirect URI", func(f url.Values) { f.Set("redirect_uri", "https://app.example/other") }},
		{"unknown code", func(f url.Values) { f.Set("code", strings.Repeat("x", 43)) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code := codeFor()
			status, out := exchange(code, tt.change)
			if status != http.StatusBadRequest || (out.Error != "invalid_grant" && out.Error != "invalid_request") {
				t.Fatalf("%d %+v, want invalid_grant", status, out)
			}
			// A failed check leaves the code to its client.
			if status, out := exchange(code, func(url.Values) {}); status != http.StatusOK {
				t.Errorf("the right request after a refused one: %d %+v", status, out)
			}
		})
	}
	t.Run("expired code", func(t *testing.T) {
		code := codeFor()
		e.clock.Advance(61 * time.Second)
		if status, out := exchange(code, func(url.Values) {}); status != http.StatusBadRequest || out.Error != "invalid_grant" {
			t.Errorf("%d %+v, want invalid_grant", status, out)
		}
	})
}

// exchangeBasicEmpty runs the flow for client id with b (a fresh browser
// when nil; the code is for the webapp client then, whose exchange must
// fail before the code matters) and exchanges the code with Basic id and
// an empty password.
func exchangeBasicEmpty(t *testing.T, e *env, id string, b *browser) (int, string) {
	t.Helper()
	code := strings.Repeat("x", 43)
	if b != nil {
		q := callback(t, b.send(t, http.MethodGet, authorizeURL(map[string]string{"client_id": id, "scope": "reports:read"}), nil))
		code = q.Get("code")
	}
	basicEmpty := "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"))
	r := e.do(t, request{path: "/token", form: url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {flowRedirect}, "code_verifier": {flowVerifier}}, header: http.Header{"Authorization": {basicEmpty}}})
	return r.Code, r.Body.String()
}

// TestRefreshWiderScopeKeepsToken: a refresh asking for more than the
// grant is refused, and the token stays good.
func TestRefreshWiderScopeKeepsToken(t *testing.T) {
	e := newEnv(t)
	e.addUser(t, "u1")
	q := signInAndConsent(t, newBrowser(e), e.clients["webapp"].id)
	_, tok := e.tokenRequest(t, "webapp", url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {flowRedirect}, "code_verifier": {flowVerifier}})
	if status, out := e.tokenRequest(t, "webapp", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "scope": {"openid admin"}}); status != http.StatusBadRequest || out.Error != "invalid_scope" {
		t.Fatalf("wider scope: %d %+v", status, out)
	}
	if status, out := e.tokenRequest(t, "webapp", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "scope": {"openid"}}); status != http.StatusOK || out.Scope != "openid" {
		t.Fatalf("the same token, narrowed: %d %+v", status, out)
	}
}

// TestRedirectURIOmitted: a request that left out redirect_uri (the
// client's only one is used) may leave it out at the token endpoint; one
// that named it must name it again.
func TestRedirectURIOmitted(t *testing.T) {
	e := newEnv(t)
	e.addUser(t, "u1")
	webapp := e.clients["webapp"].id
	b := newBrowser(e)
	signInAndConsent(t, b, webapp)
	q := callback(t, b.send(t, http.MethodGet, authorizeURL(map[string]string{"client_id": webapp, "redirect_uri": ""}), nil))
	if status, out := e.tokenRequest(t, "webapp", url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "code_verifier": {flowVerifier}}); status != http.StatusOK {
		t.Errorf("omitted in both: %d %+v", status, out)
	}
	q = callback(t, b.send(t, http.MethodGet, authorizeURL(map[string]string{"client_id": webapp}), nil))
	if status, out := e.tokenRequest(t, "webapp", url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "code_verifier": {flowVerifier}}); status != http.StatusBadRequest || out.Error != "invalid_grant" {
		t.Errorf("named, then omitted: %d %+v", status, out)
	}
	// POST /authorize takes the same parameters as a form.
	form := url.Values{}
	for k, v := range mustParseQuery(t, authorizeURL(map[string]string{"client_id": webapp})) {
		form[k] = v
	}
	if q := callback(t, b.send(t, http.MethodPost, "/authorize", form)); q.Get("code") == "" {
		t.Errorf("POST /authorize: %v", q)
	}
}

func mustParseQuery(t *testing.T, target string) url.Values {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

// TestAuthorizePromptsAndMaxAge: with a session and a grant, a request
// goes straight back to the client, unless prompt=login or an exceeded
// max_age asks for a sign-in, or prompt=consent for the consent page.
func TestAuthorizePromptsAndMaxAge(t *testing.T) {
	e := newEnv(t)
	e.addUser(t, "u1")
	webapp := e.clients["webapp"].id
	b := newBrowser(e)
	signInAndConsent(t, b, webapp)
	page := func(params map[string]string) string {
		t.Helper()
		params["client_id"] = webapp
		w := b.send(t, http.MethodGet, authorizeURL(params), nil)
		switch {
		case w.Code == http.StatusSeeOther:
			if q := callback(t, w); q.Get("code") != "" {
				return "code"
			}
			return "error"
		case strings.Contains(w.Body.String(), `name="password"`):
			return "sign-in"
		case strings.Contains(w.Body.String(), `value="allow"`):
			return "consent"
		}
		t.Fatalf("status %d: %s", w.Code, w.Body)
		return ""
	}
	for _, tt := range []struct {
		name    string
		params  map[string]string
		advance time.Duration
		want    string
	}{
		{"nothing asked", map[string]string{}, 0, "code"},
		{"prompt=none", map[string]string{"prompt": "none"}, 0, "code"},
		{"prompt=login", map[string]string{"prompt": "login"}, 0, "sign-in"},
		{"prompt=consent", map[string]string{"prompt": "consent"}, 0, "consent"},
		{"max_age not exceeded", map[string]string{"max_age": "3600"}, 0, "code"},
		{"max_age=0, same second", map[string]string{"max_age": "0"}, 0, "sign-in"},
		{"max_age exceeded", map[string]string{"max_age": "60"}, 2 * time.Minute, "sign-in"},
		{"max_age exceeded, prompt=none", map[string]string{"max_age": "60", "prompt": "none"}, 0, "error"},
	} {
		e.clock.Advance(tt.advance)
		if got := page(tt.params); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
}

// TestPublicClientAndUserInfoScope: a public client exchanges its code
// with the verifier alone; a confidential client cannot; /userinfo wants a
// user's token with openid.
func TestPublicClientAndUserInfoScope(t *testing.T) {
	e := newEnv(t)
	e.addUser(t, "u1")
	pub := &vault.Client{Credential: vault.Credential{Name: "spa", Scopes: []string{"reports:read"}}, Public: true,
		GrantTypes: []string{"authorization_code"}, RedirectURIs: []string{flowRedirect}, TokenTTL: time.Hour}
	if err := e.vault.Update(func(tx *vault.Tx) error { return tx.CreateClient(pub, "") }); err != nil {
		t.Fatal(err)
	}
	e.reload(t)
	b := newBrowser(e)
	w := b.send(t, http.MethodGet, authorizeURL(map[string]string{"client_id": pub.ID, "scope": "reports:read"}), nil)
	form := formOf(t, w.Body.String())
	form.Set("username", "u1")
	form.Set("password", flowPassword)
	form = formOf(t, b.send(t, http.MethodPost, "/authorize/signin", form).Body.String())
	form.Set("decision", "allow")
	q := callback(t, b.send(t, http.MethodPost, "/authorize/consent", form))
	exchange := url.Values{"grant_type": {"authorization_code"}, "client_id": {pub.ID}, "code": {q.Get("code")}, "redirect_uri": {flowRedirect}, "code_verifier": {flowVerifier}}
	r := e.do(t, request{path: "/token", form: exchange})
	var tok tokenResponse
	decodeJSON(t, r.Body.Bytes(), &tok)
	if r.Code != http.StatusOK || tok.AccessToken == "" || tok.IDToken != "" {
		t.Fatalf("public exchange: %d %+v (no openid: no ID token)", r.Code, tok)
	}
	// No client_id of a confidential client without its secret.
	exchange.Set("client_id", e.clients["webapp"].id)
	if r := e.do(t, request{path: "/token", form: exchange}); r.Code != http.StatusUnauthorized {
		t.Errorf("confidential client without a secret: %d", r.Code)
	}
	// /userinfo: a user's token without openid, a client's own token:
	// valid, but not for this (RFC 6750 §3.1).
	for name, bearer := range map[string]string{"no openid": tok.AccessToken, "client's own token": e.token(t, "erp", nil)} {
		w := e.do(t, request{method: http.MethodGet, path: "/userinfo", header: http.Header{"Authorization": {"Bearer " + bearer}}})
		if w.Code != http.StatusForbidden || !strings.Contains(w.Header().Get("WWW-Authenticate"), "insufficient_scope") {
			t.Errorf("%s: %d %q", name, w.Code, w.Header().Get("WWW-Authenticate"))
		}
	}
	w = e.do(t, request{method: http.MethodGet, path: "/userinfo", header: http.Header{"Authorization": {"Bearer not.a.token"}}})
	if w.Code != http.StatusUnauthorized || !strings.Contains(w.Header().Get("WWW-Authenticate"), "invalid_token") {
		t.Errorf("a bad token: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}

	// x/oauth2's auto-detection: Basic with the client_id and an empty
	// password. Accepted for a public client, refused for another.
	status, code := exchangeBasicEmpty(t, e, pub.ID, b)
	if status != http.StatusOK {
		t.Errorf("public client by Basic with an empty password: %d %s", status, code)
	}
	if status, _ := exchangeBasicEmpty(t, e, e.clients["webapp"].id, nil); status != http.StatusUnauthorized {
		t.Errorf("confidential client by Basic with an empty password: %d", status)
	}

	// The public client revokes its refresh token: the family ends.
	r = e.do(t, request{path: "/revoke", form: url.Values{"token": {tok.RefreshToken}, "client_id": {pub.ID}}})
	if r.Code != http.StatusOK {
		t.Fatalf("revoke a refresh token: %d %s", r.Code, r.Body)
	}
	r = e.do(t, request{path: "/token", form: url.Values{"grant_type": {"refresh_token"}, "client_id": {pub.ID}, "refresh_token": {tok.RefreshToken}}})
	if r.Code != http.StatusBadRequest {
		t.Errorf("refresh after revoking it: %d %s", r.Code, r.Body)
	}
}

// TestUserTokensCountAndEnd: a user's tokens count against the client's
// limits like its own; removing the user ends them.
func TestUserTokensCountAndEnd(t *testing.T) {
	e := newEnv(t)
	u := e.addUser(t, "u1")
	webapp := e.clients["webapp"]
	err := e.vault.Update(func(tx *vault.Tx) error {
		c, err := tx.Client(webapp.id)
		if err != nil {
			return err
		}
		c.Limits = []vault.Limit{{Count: 1, Period: "day"}}
		return tx.SaveClient(c)
	})
	if err != nil {
		t.Fatal(err)
	}
	e.reload(t)
	exchange := func() (int, tokenResponse) {
		q := signInAndConsent(t, newBrowser(e), webapp.id)
		return e.tokenRequest(t, "webapp", url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {flowRedirect}, "code_verifier": {flowVerifier}})
	}
	status, tok := exchange()
	if status != http.StatusOK {
		t.Fatalf("first exchange: %d %+v", status, tok)
	}
	if status, out := exchange(); status != http.StatusTooManyRequests || out.Error != "quota_exceeded" {
		t.Fatalf("second exchange over 1/day: %d %+v", status, out)
	}
	if !e.introspectActive(t, tok.AccessToken) {
		t.Fatal("the first token is not active")
	}
	if err := e.vault.Update(func(tx *vault.Tx) error { _, err := tx.DeleteUsers(u.ID); return err }); err != nil {
		t.Fatal(err)
	}
	if e.introspectActive(t, tok.AccessToken) {
		t.Error("a removed user's token is active")
	}
	if status, out := e.tokenRequest(t, "webapp", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}); status != http.StatusBadRequest || out.Error != "invalid_grant" {
		t.Errorf("a removed user's refresh token: %d %+v", status, out)
	}
}

// TestDisabledPublicClientKeepsRefreshToken: a disabled public client's
// refresh is refused before the token is rotated, so once enabled again
// the same token still refreshes.
func TestDisabledPublicClientKeepsRefreshToken(t *testing.T) {
	e := newEnv(t)
	e.addUser(t, "u1")
	pub := &vault.Client{Credential: vault.Credential{Name: "spa", Scopes: []string{"reports:read"}}, Public: true,
		GrantTypes: []string{"authorization_code"}, RedirectURIs: []string{flowRedirect}, TokenTTL: time.Hour}
	if err := e.vault.Update(func(tx *vault.Tx) error { return tx.CreateClient(pub, "") }); err != nil {
		t.Fatal(err)
	}
	e.reload(t)
	q := signInAndConsent(t, newBrowser(e), pub.ID)
	r := e.do(t, request{path: "/token", form: url.Values{"grant_type": {"authorization_code"}, "client_id": {pub.ID}, "code": {q.Get("code")}, "redirect_uri": {flowRedirect}, "code_verifier": {flowVerifier}}})
	var tok tokenResponse
	decodeJSON(t, r.Body.Bytes(), &tok)
	if r.Code != http.StatusOK {
		t.Fatalf("exchange: %d %s", r.Code, r.Body)
	}
	refresh := url.Values{"grant_type": {"refresh_token"}, "client_id": {pub.ID}, "refresh_token": {tok.RefreshToken}}
	e.setDisabled(t, vault.KindClient, "spa", true)
	if r := e.do(t, request{path: "/token", form: refresh}); r.Code != http.StatusUnauthorized || !strings.Contains(r.Body.String(), "disabled") {
		t.Fatalf("refresh of a disabled public client: %d %s", r.Code, r.Body)
	}
	e.setDisabled(t, vault.KindClient, "spa", false)
	if r := e.do(t, request{path: "/token", form: refresh}); r.Code != http.StatusOK {
		t.Fatalf("the same refresh token once enabled: %d %s", r.Code, r.Body)
	}
}
