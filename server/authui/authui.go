package authui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/text/feature/plural"
	"golang.org/x/text/language"
)

// The names of the form fields the pages post. Flow and CSRF carry the
// caller's values through unchanged.
const (
	FieldFlow     = "flow"
	FieldCSRF     = "csrf"
	FieldUserName = "username"
	FieldPassword = "password" // absent from the development sign-in
	FieldDecision = "decision" // DecisionAllow or DecisionDeny

	DecisionAllow = "allow"
	DecisionDeny  = "deny"
)

// Client is what a page shows of an OAuth client. Only Name is needed; the
// links are shown on the consent page when they are absolute http(s) URLs
// and left out otherwise (javascript:, relative, malformed).
type Client struct {
	Name        string
	Description string
	URL         string // the application's home page
	PolicyURL   string // privacy policy
	TOSURL      string // terms of service
}

// Scope is one scope a client asks for. Description is the human wording
// when the caller has one (the scope string is then shown beside it, small);
// AlreadyGranted puts it under "already allowed" rather than "new".
type Scope struct {
	Name           string
	Description    string
	AlreadyGranted bool
}

// SignIn is the sign-in page.
type SignIn struct {
	Client Client // only Name is shown: "Sign in to continue to <Name>"
	Flow   string // opaque flow id, posted back as FieldFlow
	CSRF   string // posted back as FieldCSRF

	// Action is the path the form posts to, absolute on this origin
	// ("/authorize/sign-in"); empty posts to the page's own URL.
	Action string
	// RedirectURI is the client's redirect URI for this flow, when the answer
	// to this form may be a redirect to it (see [Consent.RedirectURI]).
	RedirectURI string

	UserName string // refills the user name field after a failed attempt
	// Failed shows "wrong user name or password": one message, so an unknown
	// user and a wrong password cannot be told apart from the page.
	Failed bool
	// RetryAfter > 0 shows "too many attempts, try again in N seconds" and
	// sets the Retry-After header; the caller chooses the status (429).
	RetryAfter int
	// Dev renders the development variant for `keymint serve --dev`: any user
	// name, no password field, marked "development only".
	Dev bool
}

// Consent is the consent page.
type Consent struct {
	Client Client
	Flow   string // posted back as FieldFlow
	CSRF   string // posted back as FieldCSRF
	User   string // the signed-in user's name
	Scopes []Scope

	// Action is the path the form posts to, as in [SignIn.Action].
	Action string
	// RedirectURI is the redirect URI this flow will answer to after the
	// decision. Chrome and Safari apply the page's form-action directive to
	// the redirects that follow a form submission too, so with 'self' alone
	// the 302 to the client would be blocked; its origin (or its scheme, for
	// a native app's custom scheme) is added to form-action. Leave it empty
	// only when the POST answers on this origin.
	RedirectURI string
}

// Problem names what went wrong for the error page; its title and message
// come from the catalog, translated.
type Problem string

// The problems the error page explains. An unknown Problem is shown as
// ServerError.
const (
	UnknownClient  Problem = "unknown_client"   // no such client_id
	BadRedirectURI Problem = "bad_redirect_uri" // redirect_uri not registered: never redirect to it
	InvalidRequest Problem = "invalid_request"  // missing or malformed parameters
	SessionExpired Problem = "session_expired"  // the flow is gone or too old
	CSRFFailed     Problem = "csrf"             // the CSRF token did not match
	ServerError    Problem = "server_error"     // anything else
)

// hint is the key of the sentence that tells the user what to do next.
func (p Problem) hint() string {
	switch p {
	case UnknownClient, BadRedirectURI:
		return "error.contactdev"
	case InvalidRequest, SessionExpired, CSRFFailed:
		return "error.back"
	}
	return "error.tryagain"
}

func (p Problem) known() bool {
	switch p {
	case UnknownClient, BadRedirectURI, InvalidRequest, SessionExpired, CSRFFailed, ServerError:
		return true
	}
	return false
}

// ErrorPage is the error page, for requests that must not be redirected
// back to the client (unknown client, unregistered redirect URI, ...).
type ErrorPage struct {
	Problem Problem
	// Detail is an optional technical detail, shown untranslated under a
	// collapsed "technical details" (e.g. "redirect_uri is not registered
	// for this client"). It must not contain secrets.
	Detail string
}

//go:embed templates/*.html style.css
var files embed.FS

// Renderer renders the pages. It holds the parsed templates, the catalog and
// the language matcher, all read-only after New: safe for concurrent use.
type Renderer struct {
	pages    map[string]*template.Template
	msgs     [numLocales]messages
	tags     [numLocales]language.Tag
	matcher  language.Matcher
	css      template.CSS
	styleSrc string // the CSP source that allows exactly css: 'sha256-…'
}

// New parses the embedded templates and the catalog.
func New() (*Renderer, error) {
	css, err := files.ReadFile("style.css")
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(css)
	r := &Renderer{
		pages:    make(map[string]*template.Template),
		msgs:     catalog(),
		matcher:  newMatcher(),
		css:      template.CSS(css),
		styleSrc: "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'",
	}
	for l := range numLocales {
		r.tags[l] = l.Tag()
	}
	layout, err := template.ParseFS(files, "templates/layout.html")
	if err != nil {
		return nil, err
	}
	for _, name := range []string{"signin", "consent", "error"} {
		t, err := layout.Clone()
		if err != nil {
			return nil, err
		}
		if r.pages[name], err = t.ParseFS(files, "templates/"+name+".html"); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// page is the data every template gets. Its methods translate: {{.T "key"}}
// and {{with .Around "key"}}{{.Before}}…{{.After}}{{end}}.
type page struct {
	Lang  string
	Title string
	CSS   template.CSS

	SignIn  *signInView
	Consent *consentView
	Error   *errorView

	msgs *messages
}

// T returns the message for key; a key missing from the catalog fails the
// rendering rather than showing the key.
func (p *page) T(key string) (string, error) {
	s, ok := p.msgs.text[key]
	if !ok {
		return "", fmt.Errorf("authui: no message %q", key)
	}
	return s, nil
}

// parts are a message split around its one placeholder.
type parts struct{ Before, After string }

// Around splits the message for key around its placeholder, so that the
// template puts the value (escaped, in markup of its own) between the parts.
func (p *page) Around(key string) (parts, error) {
	s, err := p.T(key)
	if err != nil {
		return parts{}, err
	}
	before, after, ok := splitPlaceholder(s)
	if !ok {
		return parts{}, fmt.Errorf("authui: message %q has no placeholder", key)
	}
	return parts{before, after}, nil
}

// splitPlaceholder splits s around its first {name}.
func splitPlaceholder(s string) (before, after string, ok bool) {
	i := strings.IndexByte(s, '{')
	if i < 0 {
		return "", "", false
	}
	j := strings.IndexByte(s[i:], '}')
	if j < 0 {
		return "", "", false
	}
	return s[:i], s[i+j+1:], true
}

type signInView struct {
	SignIn
	Throttle string // the translated throttle message, or ""
}

type link struct {
	Label, URL string
	Host       string // shown; empty when the same as the first link's
	host       string
}

type consentView struct {
	Consent
	Links   []link
	New     []Scope
	Granted []Scope
}

type errorView struct {
	Title, Message, Hint, Detail string
}

// SignIn writes the sign-in page with the given status (0 means 200).
func (r *Renderer) SignIn(w http.ResponseWriter, status int, loc Locale, s SignIn) error {
	p := r.newPage(loc, "signin.title")
	if s.Dev {
		p.Title = p.msgs.text["dev.badge"] + " – " + p.Title
	}
	v := &signInView{SignIn: s}
	if s.RetryAfter > 0 {
		v.Throttle = r.plural(loc, "signin.throttled", s.RetryAfter)
		w.Header().Set("Retry-After", strconv.Itoa(s.RetryAfter))
	}
	p.SignIn = v
	return r.render(w, status, "signin", p, s.Action, s.RedirectURI)
}

// Consent writes the consent page with the given status (0 means 200).
func (r *Renderer) Consent(w http.ResponseWriter, status int, loc Locale, c Consent) error {
	p := r.newPage(loc, "consent.title")
	v := &consentView{Consent: c}
	for _, l := range []struct{ key, url string }{
		{"consent.website", c.Client.URL},
		{"consent.policy", c.Client.PolicyURL},
		{"consent.tos", c.Client.TOSURL},
	} {
		if u, ok := webURL(l.url); ok {
			// Each link names its host, once: where a link leads matters
			// more than its label.
			host := u.Host
			if len(v.Links) > 0 && strings.EqualFold(host, v.Links[0].host) {
				host = ""
			}
			v.Links = append(v.Links, link{Label: p.msgs.text[l.key], URL: u.String(), Host: host, host: u.Host})
		}
	}
	for _, s := range c.Scopes {
		if s.AlreadyGranted {
			v.Granted = append(v.Granted, s)
		} else {
			v.New = append(v.New, s)
		}
	}
	p.Consent = v
	return r.render(w, status, "consent", p, c.Action, c.RedirectURI)
}

// Error writes the error page for e.Problem with the given status (0 means
// 400). It never redirects: it is for requests whose redirect target cannot
// be trusted.
func (r *Renderer) Error(w http.ResponseWriter, status int, loc Locale, e ErrorPage) error {
	if status == 0 {
		status = http.StatusBadRequest
	}
	prob := e.Problem
	if !prob.known() {
		prob = ServerError
	}
	p := r.newPage(loc, "error.title")
	v := &errorView{
		Title:   p.msgs.text["error."+string(prob)+".title"],
		Message: p.msgs.text["error."+string(prob)+".message"],
		Hint:    p.msgs.text[prob.hint()],
		Detail:  e.Detail,
	}
	p.Title = v.Title
	p.Error = v
	return r.render(w, status, "error", p, "", "")
}

func (r *Renderer) newPage(loc Locale, titleKey string) *page {
	loc = loc.valid()
	m := &r.msgs[loc]
	return &page{Lang: loc.String(), Title: m.text[titleKey], CSS: r.css, msgs: m}
}

// plural returns the plural message key for n in the locale, {n} replaced.
func (r *Renderer) plural(loc Locale, key string, n int) string {
	loc = loc.valid()
	f := r.msgs[loc].plurals[key]
	s, ok := f[pluralForm(r.tags[loc], n)]
	if !ok {
		s = f[plural.Other]
	}
	return strings.Replace(s, "{n}", formatCount(n), 1)
}

// render executes the page into a buffer, then writes the headers, the
// status and the page. It always writes a response: when the page cannot be
// rendered (a bad Action or RedirectURI, a template error) it writes a bare
// 500 with the same headers and returns the error.
func (r *Renderer) render(w http.ResponseWriter, status int, name string, p *page, action, redirectURI string) error {
	if status == 0 {
		status = http.StatusOK
	}
	formAction := "'self'"
	err := checkAction(action)
	if err == nil && redirectURI != "" {
		var src string
		if src, err = formActionSource(redirectURI); err == nil {
			formAction += " " + src
		}
	}
	if err == nil && (status < 200 || status > 599) {
		err = fmt.Errorf("status %d", status)
	}
	var buf bytes.Buffer
	if err == nil {
		err = r.pages[name].ExecuteTemplate(&buf, "layout", p)
	}
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src "+r.styleSrc+"; form-action "+formAction+"; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if err != nil {
		h.Del("Retry-After")
		h.Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte("500 internal server error\n"))
		return fmt.Errorf("authui: cannot render the %s page: %w", name, err)
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Language", p.Lang)
	w.WriteHeader(status)
	_, err = w.Write(buf.Bytes())
	return err
}

// checkAction accepts "" or an absolute path on this origin.
func checkAction(action string) error {
	if action == "" {
		return nil
	}
	u, err := url.Parse(action)
	if err != nil || u.Scheme != "" || u.Host != "" || !strings.HasPrefix(action, "/") ||
		strings.HasPrefix(action, "//") || strings.ContainsAny(action, "\\\x00\t\r\n") {
		return fmt.Errorf("action %q is not a path on this origin", action)
	}
	return nil
}

// webURL accepts an absolute http or https URL with a host and returns it
// parsed; anything else (javascript:, data:, relative, malformed) is refused.
func webURL(raw string) (*url.URL, bool) {
	if raw == "" || strings.ContainsAny(raw, " \t\r\n\x00") {
		return nil, false
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.Opaque != "" {
		return nil, false
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		return u, true
	}
	return nil, false
}

// formActionSource turns a redirect URI into a CSP source expression: the
// origin of an http(s) URI (scheme, host, port), or the scheme alone of a
// private-use URI scheme (RFC 8252: com.example.app:/cb). Every character is
// checked, so the value cannot end the directive or add another.
func formActionSource(redirectURI string) (string, error) {
	u, err := url.Parse(redirectURI)
	if err != nil {
		return "", fmt.Errorf("redirect URI: %v", err)
	}
	scheme := strings.ToLower(u.Scheme)
	if !validScheme(scheme) {
		return "", fmt.Errorf("redirect URI %q has no valid scheme", redirectURI)
	}
	switch scheme {
	case "http", "https":
	case "javascript", "vbscript", "data", "blob", "file", "filesystem", "about":
		return "", fmt.Errorf("redirect URI %q: scheme %s is not allowed", redirectURI, scheme)
	default:
		return scheme + ":", nil
	}
	host := strings.ToLower(u.Host)
	if host == "" || !validHost(host) {
		return "", fmt.Errorf("redirect URI %q has no valid host", redirectURI)
	}
	return scheme + "://" + host, nil
}

// validScheme is RFC 3986's scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ),
// lower case.
func validScheme(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// validHost allows a DNS name, an IPv4 address or a bracketed IPv6 address,
// with an optional port: letters, digits, '.', '-', ':', '[' and ']'.
func validHost(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == ':' || c == '[' || c == ']') {
			return false
		}
	}
	return true
}
