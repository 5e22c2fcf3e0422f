package nodetest_test

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keymint/keymint/internal/browsertest"
	"github.com/keymint/keymint/internal/flowtest"
	"github.com/keymint/keymint/internal/nodetest"
)

// The authorization-code flow with openid-client v6 as the application and
// Chromium as the user's browser, against `keymint serve`: the script's
// steps (js/authorization_code.mjs) and the browser's alternate as in a
// real sign-in.

func TestMain(m *testing.M) { os.Exit(flowtest.Main(m)) }

const (
	userPassword = "correct horse battery staple"
	authcodeJS   = "authorization_code.mjs"
	// maxAge is the max_age the application sends, so that openid-client
	// checks the ID token's auth_time.
	maxAge = "300"
)

// authorizeOut is what STEP=authorize prints.
type authorizeOut struct {
	URL          string `json:"url"`
	CodeVerifier string `json:"code_verifier"`
	State        string `json:"state"`
	Nonce        string `json:"nonce"`
	Metadata     struct {
		Issuer                string   `json:"issuer"`
		AuthorizationEndpoint string   `json:"authorization_endpoint"`
		AuthMethods           []string `json:"token_endpoint_auth_methods_supported"`
		ChallengeMethods      []string `json:"code_challenge_methods_supported"`
		IssParameter          bool     `json:"authorization_response_iss_parameter_supported"`
	} `json:"metadata"`
}

// tokensOut is a token response as the script summarizes it.
type tokensOut struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	Scope        string `json:"scope"`
	HasIDToken   bool   `json:"has_id_token"`
}

// idTokenClaims are the ID token's claims the test checks.
type idTokenClaims struct {
	Iss               string `json:"iss"`
	Sub               string `json:"sub"`
	Aud               any    `json:"aud"`
	Nonce             string `json:"nonce"`
	AuthTime          int64  `json:"auth_time"`
	AtHash            string `json:"at_hash"`
	Iat, Exp          int64
	Name              string `json:"name"`
	PreferredUsername string `json:"preferred_username"`
	Email             string `json:"email"`
}

// exchangeOut is what STEP=exchange prints.
type exchangeOut struct {
	Error     string         `json:"error"`
	Tokens    tokensOut      `json:"tokens"`
	Claims    idTokenClaims  `json:"claims"`
	IDHeader  map[string]any `json:"id_header"`
	UserInfo  map[string]any `json:"userinfo"`
	Refreshed struct {
		tokensOut
		Claims *idTokenClaims `json:"claims"`
	} `json:"refreshed"`
}

// refreshOut is what STEP=refresh prints.
type refreshOut struct {
	Error  string    `json:"error"`
	Status int       `json:"status"`
	Tokens tokensOut `json:"tokens"`
}

// scriptEnv is base with the pairs of kv added.
func scriptEnv(base map[string]string, kv ...string) map[string]string {
	env := make(map[string]string, len(base)+len(kv)/2)
	for k, v := range base {
		env[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		env[kv[i]] = kv[i+1]
	}
	return env
}

// signInAndAllow is the user's part in Chromium: the authorization URL
// opened, sign-in as u1, the consent page checked to name the client and
// list scopes, a screenshot of it taken to shot (if not empty), Allow. It
// returns the URL the browser landed on at the callback.
func signInAndAllow(t *testing.T, b *browsertest.Browser, cb *browsertest.Callback, authURL, client string, scopes []string, shot string) string {
	t.Helper()
	if status := b.Navigate(authURL); status != http.StatusOK {
		t.Fatalf("authorization URL: status %d, want the sign-in page", status)
	}
	if lead := b.Text("p.lead"); !strings.Contains(lead, client) {
		t.Errorf("sign-in page says %q, want it to name the client %s", lead, client)
	}
	if status := flowtest.SignIn(b, "u1", userPassword); status != http.StatusOK {
		t.Fatalf("sign-in: status %d, want the consent page", status)
	}
	if h1 := b.Text("h1"); !strings.Contains(h1, client) {
		t.Errorf("consent page heading %q does not name the client %s", h1, client)
	}
	if got := flowtest.ConsentScopes(b); !slices.Equal(got, scopes) {
		t.Errorf("consent page lists %q, want %q", got, scopes)
	}
	if shot != "" {
		b.Screenshot(shot)
	}
	if status := flowtest.Allow(b); status != http.StatusOK {
		t.Fatalf("consent: the callback page's status is %d", status)
	}
	got := cb.Received()
	if len(got) != 1 {
		t.Fatalf("the callback received %v, want one request", got)
	}
	return got[0].String()
}

// TestNodeOpenIDClientAuthorizationCode: a Node.js web application with
// openid-client v6 signs a user in through keymint serve, with a real
// browser: discovery, the authorization URL with PKCE, state and nonce;
// sign-in and consent in Chromium; the code redeemed and the ID token
// checked (claims by openid-client, signature by jose), UserInfo, a
// refresh. Then an administrator revokes the user's grant: the refresh
// token is refused with invalid_grant and the access token is inactive.
func TestNodeOpenIDClientAuthorizationCode(t *testing.T) {
	nodetest.Dir(t) // node and the clients are there, before keymint is built
	cb := browsertest.NewCallback(t)
	k := flowtest.New(t)
	webapp := k.NewClient("webapp", "--grant", "authorization_code", "--redirect-uri", cb.URL,
		"--scope", "reports:read", "--description", "Monthly reports for the team")
	user := k.AddUser("u1", "Ada Lovelace", userPassword)
	issuer := k.Serve()
	base := map[string]string{"ISSUER": issuer, "CLIENT_ID": webapp.ID, "CLIENT_SECRET": webapp.Secret}
	scopes := []string{"openid", "profile", "reports:read"}

	// A: the application builds the authorization URL.
	var a authorizeOut
	nodetest.RunJSON(t, authcodeJS, scriptEnv(base, "STEP", "authorize", "REDIRECT_URI", cb.URL, "SCOPE", strings.Join(scopes, " "), "MAX_AGE", maxAge), &a)
	if md := a.Metadata; md.Issuer != issuer || md.AuthorizationEndpoint != issuer+"/authorize" || !md.IssParameter || !slices.Equal(md.ChallengeMethods, []string{"S256"}) {
		t.Errorf("discovered %+v", md)
	}
	if !strings.HasPrefix(a.URL, issuer+"/authorize?") || a.CodeVerifier == "" || a.State == "" || a.Nonce == "" {
		t.Fatalf("authorize step printed %+v", a)
	}

	// The user signs in and consents.
	b := browsertest.New(t)
	shot := filepath.Join(t.ArtifactDir(), "consent.png")
	landed := signInAndAllow(t, b, cb, a.URL, "webapp", scopes, shot)
	if os.Getenv("KEYMINT_UPDATE_SCREENSHOT") == "1" {
		updateScreenshot(t, shot, filepath.Join("..", "..", "docs", "consent.png"))
	}
	stayedOnMachine(t, b)

	// B: the application redeems the code, reads UserInfo, refreshes.
	var x exchangeOut
	nodetest.RunJSON(t, authcodeJS, scriptEnv(base, "STEP", "exchange", "CALLBACK_URL", landed,
		"CODE_VERIFIER", a.CodeVerifier, "STATE", a.State, "NONCE", a.Nonce, "MAX_AGE", maxAge), &x)
	if x.Error != "" {
		t.Fatalf("exchange refused: %s", x.Error)
	}
	checkTokens(t, "code exchange", x.Tokens, strings.Join(scopes, " "))
	c := x.Claims
	if c.Iss != issuer || c.Sub != user.ID || c.Aud != webapp.ID || c.Nonce != a.Nonce || c.AtHash == "" || c.Exp <= c.Iat {
		t.Errorf("ID token claims %+v; want iss %s, sub %s, aud %s, the nonce, at_hash", c, issuer, user.ID, webapp.ID)
	}
	if at := time.Unix(c.AuthTime, 0); time.Since(at) > time.Minute || c.Name != "Ada Lovelace" || c.PreferredUsername != "u1" || c.Email != "" {
		t.Errorf("ID token claims %+v; want auth_time just now, profile claims, no email (not asked)", c)
	}
	if h := x.IDHeader; h["alg"] != "ES256" || h["kid"] == nil || h["typ"] == "at+jwt" {
		t.Errorf("ID token header %v", h)
	}
	if u := x.UserInfo; u["sub"] != user.ID || u["name"] != "Ada Lovelace" || u["preferred_username"] != "u1" || u["email"] != nil {
		t.Errorf("userinfo %v", u)
	}
	r := x.Refreshed
	checkTokens(t, "refresh", r.tokensOut, strings.Join(scopes, " "))
	if r.AccessToken == x.Tokens.AccessToken || r.RefreshToken == x.Tokens.RefreshToken {
		t.Error("the refresh gave the same tokens again, want new ones (rotation)")
	}
	if r.Claims != nil && (r.Claims.Sub != user.ID || r.Claims.AuthTime != c.AuthTime || r.Claims.Nonce != "") {
		t.Errorf("ID token of the refresh %+v: want the same sub and auth_time, no nonce (OpenID Connect Core §12.2)", r.Claims)
	}
	if in := k.Introspect(webapp, r.AccessToken); in["active"] != true || in["sub"] != user.ID || in["client_id"] != webapp.ID {
		t.Errorf("introspection of the refreshed access token: %v", in)
	}

	// An administrator revokes the user's grant to webapp.
	k.RevokeGrant(user.ID, webapp.ID)

	// C: the application refreshes again: refused.
	var refused refreshOut
	nodetest.RunJSON(t, authcodeJS, scriptEnv(base, "STEP", "refresh", "REFRESH_TOKEN", r.RefreshToken), &refused)
	if refused.Error != "invalid_grant" || refused.Status != http.StatusBadRequest {
		t.Errorf("refresh after the grant was revoked: %+v, want invalid_grant (400)", refused)
	}
	if in := k.Introspect(webapp, r.AccessToken); in["active"] != false || len(in) != 1 {
		t.Errorf("introspection of the access token of a revoked grant: %v, want only active: false", in)
	}
}

// TestNodeOpenIDClientPublic: a public client (a native app: `client new
// --public`, no secret, a loopback redirect URI on any port) runs the same
// flow with openid-client's None() client authentication, PKCE being its
// proof, and refreshes twice; a refresh token it already used is refused.
func TestNodeOpenIDClientPublic(t *testing.T) {
	nodetest.Dir(t)
	cb := browsertest.NewCallback(t)
	k := flowtest.New(t)
	// A native app's loopback redirect URI, registered without a port: it
	// listens on whichever the system gives it (RFC 8252 §7.3), here the
	// callback's.
	spa := k.NewClient("spa", "--public", "--grant", "authorization_code", "--redirect-uri", "http://127.0.0.1/callback", "--scope", "reports:read")
	if spa.Secret != "" || !spa.Public {
		t.Fatalf("client new --public: %+v, want a public client without a secret", spa)
	}
	rs := k.NewClient("reports-api", "--scope", "reports:read") // a resource server, to introspect
	user := k.AddUser("u1", "Ada Lovelace", userPassword)
	issuer := k.Serve()
	base := map[string]string{"ISSUER": issuer, "CLIENT_ID": spa.ID} // no CLIENT_SECRET: None()
	scopes := []string{"openid", "reports:read"}

	var a authorizeOut
	nodetest.RunJSON(t, authcodeJS, scriptEnv(base, "STEP", "authorize", "REDIRECT_URI", cb.URL, "SCOPE", strings.Join(scopes, " "), "MAX_AGE", maxAge), &a)
	if !slices.Contains(a.Metadata.AuthMethods, "none") {
		t.Errorf("token_endpoint_auth_methods_supported %q lacks none", a.Metadata.AuthMethods)
	}
	b := browsertest.New(t)
	landed := signInAndAllow(t, b, cb, a.URL, "spa", scopes, "")
	stayedOnMachine(t, b)

	var x exchangeOut
	nodetest.RunJSON(t, authcodeJS, scriptEnv(base, "STEP", "exchange", "CALLBACK_URL", landed,
		"CODE_VERIFIER", a.CodeVerifier, "STATE", a.State, "NONCE", a.Nonce, "MAX_AGE", maxAge), &x)
	if x.Error != "" {
		t.Fatalf("exchange refused: %s", x.Error)
	}
	checkTokens(t, "code exchange", x.Tokens, strings.Join(scopes, " "))
	if x.Claims.Sub != user.ID || x.Claims.Aud != spa.ID || x.Claims.Name != "" {
		t.Errorf("ID token claims %+v; want sub %s, aud %s, no profile claims (profile not asked)", x.Claims, user.ID, spa.ID)
	}
	if x.UserInfo["sub"] != user.ID {
		t.Errorf("userinfo %v", x.UserInfo)
	}
	checkTokens(t, "refresh", x.Refreshed.tokensOut, strings.Join(scopes, " "))

	// The refresh token the exchange step already rotated: refused; the
	// newest one still works.
	var again refreshOut
	nodetest.RunJSON(t, authcodeJS, scriptEnv(base, "STEP", "refresh", "REFRESH_TOKEN", x.Refreshed.RefreshToken), &again)
	if again.Error != "" {
		t.Fatalf("second refresh: %+v", again)
	}
	checkTokens(t, "second refresh", again.Tokens, strings.Join(scopes, " "))
	if in := k.Introspect(rs, again.Tokens.AccessToken); in["active"] != true || in["client_id"] != spa.ID || in["sub"] != user.ID {
		t.Errorf("introspection of the public client's access token: %v", in)
	}
	var replay refreshOut
	nodetest.RunJSON(t, authcodeJS, scriptEnv(base, "STEP", "refresh", "REFRESH_TOKEN", x.Tokens.RefreshToken), &replay)
	if replay.Error != "invalid_grant" {
		t.Errorf("a used refresh token: %+v, want invalid_grant", replay)
	}
}

func checkTokens(t *testing.T, what string, tok tokensOut, scope string) {
	t.Helper()
	// oauth4webapi lowercases token_type.
	if !strings.EqualFold(tok.TokenType, "Bearer") || tok.AccessToken == "" || !strings.HasPrefix(tok.RefreshToken, "kmrt_") ||
		tok.Scope != scope || !tok.HasIDToken || tok.ExpiresIn < 3590 || tok.ExpiresIn > 3600 {
		t.Errorf("%s: %+v; want a Bearer access token for an hour, scope %q, a kmrt_ refresh token and an ID token", what, tok, scope)
	}
}

// stayedOnMachine fails the test if the browser's pages asked for anything
// off this machine.
func stayedOnMachine(t *testing.T, b *browsertest.Browser) {
	t.Helper()
	if off := b.OffMachine(); len(off) > 0 {
		t.Errorf("the pages made requests that would leave the machine: %v", off)
	}
}

// updateScreenshot copies the consent page's screenshot to the README's
// (KEYMINT_UPDATE_SCREENSHOT=1).
func updateScreenshot(t *testing.T, from, to string) {
	t.Helper()
	png, err := os.ReadFile(from)
	if err == nil {
		err = os.MkdirAll(filepath.Dir(to), 0o755)
	}
	if err == nil {
		err = os.WriteFile(to, png, 0o644)
	}
	if err != nil {
		t.Fatalf("update the screenshot: %v", err)
	}
	t.Logf("wrote %s", to)
}
