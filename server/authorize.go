package server

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keymint/keymint/server/authui"
	"github.com/keymint/keymint/token"
	"github.com/keymint/keymint/vault"
)

// The authorization endpoint (RFC 6749 §4.1, OpenID Connect Core §3.1):
//
//	GET  /authorize          the authorization request; answers with the
//	                         sign-in page, the consent page, or a redirect
//	POST /authorize/signin   the sign-in form
//	POST /authorize/consent  the consent form
//
// A request whose client or redirect URI is bad gets an error page, never
// a redirect (RFC 6749 §4.1.2.1: an open redirector otherwise); every
// other error goes back to the client's redirect URI with error, state and
// iss (RFC 9207). The request travels between the pages sealed (flow), the
// user's sign-in as a sealed cookie (session): see sealed.go and
// authsession.go.

// AuthorizePath is the path of the authorization endpoint.
const AuthorizePath = pathAuthorize

const (
	pathAuthorize = "/authorize"
	pathSignIn    = "/authorize/signin"
	pathConsent   = "/authorize/consent"
)

// flowTTL is how long a user has to get through sign-in and consent.
const flowTTL = 10 * time.Minute

// codeTTL is how long an authorization code may be redeemed (RFC 6749
// §4.1.2 recommends at most ten minutes; the issue asks at most 60 s).
const codeTTL = 60 * time.Second

// OpenID Connect's own scopes: always allowed to an authorization_code
// client, as they are about the user, who consents to them.
var oidcScopes = []string{"openid", "profile", "email"}

// flow is an authorization request that passed its checks, as it travels
// sealed between the pages.
type flow struct {
	ClientID    string `json:"c"`
	RedirectURI string `json:"r"`
	// RedirectGiven: the request named the redirect URI (else the
	// client's only one is used, and the token request may omit it).
	RedirectGiven bool     `json:"rg,omitempty"`
	Scopes        []string `json:"s"`
	State         string   `json:"st,omitempty"`
	Challenge     string   `json:"pk"`
	Nonce         string   `json:"n,omitempty"`
	// Prompt holds the prompt values (none, login, consent).
	Prompt []string `json:"p,omitempty"`
	// MaxAge is max_age in seconds, or -1 when not given.
	MaxAge    int64  `json:"ma"`
	UILocales string `json:"ui,omitempty"`
	// SignedIn is set once the user signed in within this flow, so that
	// prompt=login and max_age are satisfied by that sign-in.
	SignedIn bool `json:"si,omitempty"`
}

func (f *flow) prompts(p string) bool { return slices.Contains(f.Prompt, p) }

// authError is a refusal of an authorization request. With redirect set
// it goes back to the client; else it is an error page.
type authError struct {
	redirect bool
	code     string // the OAuth error code, when redirecting
	desc     string
	problem  authui.Problem // the page, when not redirecting
	status   int
	cause    error
}

func pageError(status int, p authui.Problem, cause error) *authError {
	return &authError{status: status, problem: p, cause: cause}
}

func redirectError(code, desc string) *authError {
	return &authError{redirect: true, code: code, desc: desc, cause: errors.New(desc)}
}

// parseAuthorize checks an authorization request and returns its flow, and
// the client. Checks of client and redirect URI come first, as their
// failures must not redirect.
func (s *Server) parseAuthorize(q url.Values, snap *snapshot) (*flow, *vault.Client, *authError) {
	for _, name := range []string{"client_id", "redirect_uri"} {
		if len(q[name]) > 1 {
			return nil, nil, pageError(http.StatusBadRequest, authui.InvalidRequest, errors.New("repeated "+name))
		}
	}
	c, ok := snap.clients.get(q.Get("client_id"))
	if !ok || !slices.Contains(c.GrantTypes, token.GrantAuthorizationCode) {
		return nil, nil, pageError(http.StatusBadRequest, authui.UnknownClient, errors.New("unknown client or not an authorization_code client"))
	}
	redirect, given := q.Get("redirect_uri"), q.Has("redirect_uri")
	if !given && len(c.RedirectURIs) == 1 {
		redirect = c.RedirectURIs[0]
	}
	redirect, ok = token.MatchRedirectURI(c.RedirectURIs, redirect)
	if !ok {
		return nil, c, pageError(http.StatusBadRequest, authui.BadRedirectURI, errors.New("redirect_uri is not registered for the client"))
	}
	f := &flow{ClientID: c.ID, RedirectURI: redirect, RedirectGiven: given, State: q.Get("state"), Nonce: q.Get("nonce"), UILocales: q.Get("ui_locales"), MaxAge: -1}
	for name, v := range q {
		if len(v) > 1 {
			return f, c, redirectError(errInvalidRequest, "parameter "+name+" is repeated")
		}
	}
	if rt := q.Get("response_type"); rt != "code" {
		return f, c, redirectError("unsupported_response_type", "response_type must be code")
	}
	if q.Has("request") || q.Has("request_uri") {
		return f, c, redirectError("request_not_supported", "request objects are not supported")
	}
	if err := token.CheckCodeChallenge(q.Get("code_challenge"), q.Get("code_challenge_method")); err != nil {
		return f, c, redirectError(errInvalidRequest, err.Error())
	}
	f.Challenge = q.Get("code_challenge")
	if e := parsePrompt(q.Get("prompt"), f); e != nil {
		return f, c, e
	}
	if ma := q.Get("max_age"); ma != "" {
		n, err := strconv.ParseInt(ma, 10, 64)
		if err != nil || n < 0 {
			return f, c, redirectError(errInvalidRequest, "max_age must be a non-negative integer")
		}
		f.MaxAge = n
	}
	scopes, e := scopeParam(q.Get("scope"))
	if e != nil {
		return f, c, redirectError(errInvalidScope, "scope is malformed")
	}
	if f.Scopes, e = s.allowedScopes(c, scopes); e != nil {
		if e.code == errInvalidScope {
			return f, c, redirectError(errInvalidScope, "the requested scope is not allowed for this client")
		}
		return f, c, &authError{redirect: true, code: errTemporarily, desc: "cannot read the vault now", cause: e.cause}
	}
	return f, c, nil
}

func parsePrompt(p string, f *flow) *authError {
	for _, v := range strings.Fields(p) {
		switch v {
		case "none", "login", "consent":
			if !f.prompts(v) {
				f.Prompt = append(f.Prompt, v)
			}
		default:
			return redirectError(errInvalidRequest, "prompt must be none, login or consent")
		}
	}
	if f.prompts("none") && len(f.Prompt) > 1 {
		return redirectError(errInvalidRequest, "prompt=none goes with no other value")
	}
	return nil
}

// allowedScopes checks the requested scopes against what c may ask for
// (its permission group's scopes, or its own, and OpenID Connect's), and
// returns them; none requested means all c may ask for.
func (s *Server) allowedScopes(c *vault.Client, requested []string) ([]string, *oauthError) {
	var allowed []string
	err := s.v.View(func(tx *vault.Tx) (err error) {
		allowed, err = tx.ClientScopes(c)
		return err
	})
	if err != nil {
		return nil, &oauthError{status: http.StatusServiceUnavailable, code: errTemporarily, cause: err}
	}
	if len(requested) == 0 {
		return slices.Clone(allowed), nil
	}
	for _, sc := range requested {
		if !slices.Contains(allowed, sc) && !slices.Contains(oidcScopes, sc) {
			return nil, &oauthError{status: http.StatusBadRequest, code: errInvalidScope}
		}
	}
	return requested, nil
}

// handleAuthorize is GET /authorize, and POST with the parameters as a
// form (OpenID Connect Core §3.1.2.1).
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	params := r.URL.Query()
	if r.Method == http.MethodPost {
		if err := r.ParseForm(); err != nil {
			s.refuseAuthorize(w, r, nil, nil, pageError(http.StatusBadRequest, authui.InvalidRequest, err))
			return
		}
		params = r.PostForm
	}
	snap := s.current()
	f, c, e := s.parseAuthorize(params, snap)
	if e != nil {
		s.refuseAuthorize(w, r, f, c, e)
		return
	}
	logOf(w).clientID = c.ID
	s.continueFlow(w, r, f, c, s.sessionOf(r))
}

// continueFlow takes an accepted request on, for a user signed in with
// sess (nil if none): to the sign-in page, the consent page, or the
// client with a code.
func (s *Server) continueFlow(w http.ResponseWriter, r *http.Request, f *flow, c *vault.Client, sess *session) {
	now := s.now()
	if sess != nil && !f.SignedIn {
		// max_age=0 is prompt=login (OpenID Connect Core, errata 2): whole
		// seconds would let a sign-in of this very second pass.
		tooOld := f.MaxAge == 0 || (f.MaxAge > 0 && now.Unix()-sess.AuthTime > f.MaxAge)
		if f.prompts("login") || tooOld {
			sess = nil // sign in again (OpenID Connect Core §3.1.2.1)
		}
	}
	if sess == nil {
		if f.prompts("none") {
			s.refuseAuthorize(w, r, f, c, redirectError("login_required", "the user is not signed in"))
			return
		}
		s.showSignIn(w, r, f, c, signInPage{status: http.StatusOK})
		return
	}
	user, grant, err := s.userAndGrant(sess.UserID, c.ID)
	if err != nil {
		s.refuseAuthorize(w, r, f, c, &authError{redirect: true, code: errServerError, desc: "cannot read the vault now", cause: err})
		return
	}
	if user == nil {
		// Removed or disabled since signing in.
		s.clearSession(w, r)
		s.showSignIn(w, r, f, c, signInPage{status: http.StatusOK})
		return
	}
	missing := missingScopes(grant, f.Scopes)
	if len(missing) == 0 && !f.prompts("consent") {
		s.issueCode(w, r, f, c, user, sess)
		return
	}
	if f.prompts("none") {
		s.refuseAuthorize(w, r, f, c, redirectError("consent_required", "the user has not granted these scopes"))
		return
	}
	s.showConsent(w, r, f, c, user, grant)
}

// userAndGrant reads the user, if still there and enabled, and their grant
// to the client, if any.
func (s *Server) userAndGrant(userID, clientID string) (*vault.User, *vault.Grant, error) {
	var u *vault.User
	var g *vault.Grant
	err := s.v.View(func(tx *vault.Tx) error {
		var err error
		u, err = tx.User(userID)
		switch {
		case errors.Is(err, vault.ErrNotFound):
			u = nil
			return nil
		case err != nil:
			return err
		case u.Disabled:
			u = nil
			return nil
		}
		g, err = tx.GrantFor(userID, clientID)
		if errors.Is(err, vault.ErrNotFound) {
			g, err = nil, nil
		}
		return err
	})
	return u, g, err
}

// missingScopes are the scopes of want that grant does not cover.
func missingScopes(grant *vault.Grant, want []string) []string {
	var missing []string
	for _, sc := range want {
		if grant == nil || !slices.Contains(grant.Scopes, sc) {
			missing = append(missing, sc)
		}
	}
	return missing
}

// refuseAuthorize answers a refused request: a redirect to the client with
// the error when e says so and the redirect URI is known good, else an
// error page.
func (s *Server) refuseAuthorize(w http.ResponseWriter, r *http.Request, f *flow, c *vault.Client, e *authError) {
	info := logOf(w)
	info.cause = e.cause
	if e.redirect && f != nil && f.RedirectURI != "" {
		info.code = e.code
		q := url.Values{"error": {e.code}, "iss": {s.issuer}}
		if e.desc != "" {
			q.Set("error_description", safeDescription(e.desc))
		}
		if f.State != "" {
			q.Set("state", f.State)
		}
		s.redirectTo(w, r, f.RedirectURI, q)
		return
	}
	status := e.status
	if status == 0 {
		status = http.StatusBadRequest
	}
	problem := e.problem
	if problem == "" {
		problem = authui.InvalidRequest
	}
	loc := s.pages.Lang(r, flowLocales(f))
	_ = s.pages.Error(w, status, loc, authui.ErrorPage{Problem: problem})
}

func flowLocales(f *flow) string {
	if f == nil {
		return ""
	}
	return f.UILocales
}

// safeDescription keeps error_description within RFC 6749's character set
// (%x20-21 / %x23-5B / %x5D-7E).
func safeDescription(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			b[i] = ' '
		}
	}
	return string(b)
}

// redirectTo sends the browser to the client's redirect URI with q added
// to its query (RFC 6749 §4.1.2: the registered URI's own query kept).
func (s *Server) redirectTo(w http.ResponseWriter, r *http.Request, redirectURI string, q url.Values) {
	u, err := url.Parse(redirectURI)
	if err != nil {
		// Registered URIs were checked; this cannot happen.
		http.Error(w, "bad redirect URI", http.StatusInternalServerError)
		return
	}
	merged := u.Query()
	for k, v := range q {
		merged[k] = v
	}
	u.RawQuery = merged.Encode()
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}
