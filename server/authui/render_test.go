package authui

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// node is an element of a rendered page. golang.org/x/net/html is not among
// the module's dependencies, so the pages are written as polyglot markup
// (void elements closed with "/>", boolean attributes with values) and read
// here with encoding/xml in strict mode: an unbalanced or unquoted tag, or a
// stray "<" or "&" from a value that escaped html/template, fails the parse.
type node struct {
	name  string
	attr  map[string]string
	kids  []*node // elements and text nodes (name "") in document order
	text  string  // a text node's character data
	outer *node
}

func (n *node) all(name string) []*node {
	var out []*node
	var walk func(*node)
	walk = func(n *node) {
		for _, k := range n.kids {
			if k.name == name && name != "" {
				out = append(out, k)
			}
			walk(k)
		}
	}
	walk(n)
	return out
}

// textContent is the text of n and everything inside it.
func (n *node) textContent() string {
	var b strings.Builder
	var walk func(*node)
	walk = func(n *node) {
		b.WriteString(n.text)
		for _, k := range n.kids {
			walk(k)
		}
	}
	walk(n)
	return b.String()
}

func parsePage(t *testing.T, body string) *node {
	t.Helper()
	if !strings.HasPrefix(body, "<!DOCTYPE html>\n") {
		t.Fatalf("page does not start with the doctype: %.40q", body)
	}
	d := xml.NewDecoder(strings.NewReader(body))
	d.Strict = true
	d.Entity = xml.HTMLEntity
	root := &node{attr: map[string]string{}}
	cur := root
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("page is not well-formed: %v\n%s", err, body)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			n := &node{name: tok.Name.Local, attr: map[string]string{}, outer: cur}
			for _, a := range tok.Attr {
				name := a.Name.Local
				if a.Name.Space != "" {
					name = a.Name.Space + ":" + name
				}
				if _, dup := n.attr[name]; dup {
					t.Errorf("<%s> repeats attribute %s", n.name, name)
				}
				n.attr[name] = a.Value
			}
			cur.kids = append(cur.kids, n)
			cur = n
		case xml.EndElement:
			cur = cur.outer
		case xml.CharData:
			cur.kids = append(cur.kids, &node{text: string(tok), outer: cur})
		}
	}
	var html []*node
	for _, k := range root.kids {
		if k.name != "" {
			html = append(html, k)
		} else if strings.TrimSpace(k.text) != "" {
			t.Errorf("text outside <html>: %q", k.text)
		}
	}
	if len(html) != 1 || html[0].name != "html" {
		t.Fatalf("page has no single <html> root")
	}
	return html[0]
}

// inputsByName maps the name of each <input> to its attributes.
func inputsByName(doc *node) map[string]map[string]string {
	m := map[string]map[string]string{}
	for _, in := range doc.all("input") {
		m[in.attr["name"]] = in.attr
	}
	return m
}

func hostileClient() Client {
	return Client{
		Name:        `<script>alert("name")</script>`,
		Description: `"><img src=x onerror=alert(1)> & <b>bold</b>`,
		URL:         "https://app.example.com/home?a=1&b=<2>",
		PolicyURL:   "javascript:alert(document.cookie)",
		TOSURL:      " JaVaScRiPt:alert(1)",
	}
}

type rendered struct {
	rec  *httptest.ResponseRecorder
	doc  *node
	body string
}

func render(t *testing.T, write func(w http.ResponseWriter) error) rendered {
	t.Helper()
	rec := httptest.NewRecorder()
	if err := write(rec); err != nil {
		t.Fatalf("render: %v", err)
	}
	body := rec.Body.String()
	return rendered{rec, parsePage(t, body), body}
}

// samplePages renders every page, with every optional part, in loc.
func samplePages(t *testing.T, r *Renderer, loc Locale) map[string]rendered {
	t.Helper()
	c := Client{Name: "Invoice Sync", Description: "Copies invoices to the ledger.", URL: "https://sync.example.com/", PolicyURL: "https://sync.example.com/privacy", TOSURL: "http://sync.example.com/terms"}
	pages := map[string]rendered{
		"signin": render(t, func(w http.ResponseWriter) error {
			return r.SignIn(w, http.StatusOK, loc, SignIn{Client: c, Flow: "flow-1", CSRF: "csrf-1"})
		}),
		"signin-failed": render(t, func(w http.ResponseWriter) error {
			return r.SignIn(w, http.StatusUnauthorized, loc, SignIn{Client: c, Flow: "flow-1", CSRF: "csrf-1", UserName: "alice", Failed: true})
		}),
		"signin-throttled": render(t, func(w http.ResponseWriter) error {
			return r.SignIn(w, http.StatusTooManyRequests, loc, SignIn{Client: c, Flow: "flow-1", CSRF: "csrf-1", UserName: "alice", RetryAfter: 22})
		}),
		"signin-dev": render(t, func(w http.ResponseWriter) error {
			return r.SignIn(w, 0, loc, SignIn{Client: c, Flow: "flow-1", CSRF: "csrf-1", Dev: true, Action: "/authorize/sign-in"})
		}),
		"consent": render(t, func(w http.ResponseWriter) error {
			return r.Consent(w, 0, loc, Consent{Client: c, Flow: "flow-2", CSRF: "csrf-2", User: "alice", Action: "/authorize/consent",
				RedirectURI: "https://sync.example.com/callback",
				Scopes: []Scope{
					{Name: "invoices:read", Description: "Read your invoices"},
					{Name: "invoices:write"},
					{Name: "openid", Description: "Know who you are", AlreadyGranted: true},
				}})
		}),
	}
	for _, p := range []Problem{UnknownClient, BadRedirectURI, InvalidRequest, SessionExpired, CSRFFailed, ServerError} {
		pages["error-"+string(p)] = render(t, func(w http.ResponseWriter) error {
			return r.Error(w, http.StatusBadRequest, loc, ErrorPage{Problem: p, Detail: "redirect_uri is not registered"})
		})
	}
	return pages
}

// TestPagesInEveryLanguage renders each page in each language and checks
// the parts that matter, in that language's words.
func TestPagesInEveryLanguage(t *testing.T) {
	r := newRenderer(t)
	// A few words per language, written here rather than read from the
	// catalog, so a catalog pasted into the wrong language fails.
	words := map[Locale]struct{ submit, allow, deny, failed, seconds, dev string }{
		English: {"Sign in", "Allow", "Deny", "Wrong user name or password.", "22 seconds", "Development only"},
		Czech:   {"Přihlásit se", "Povolit", "Zamítnout", "Nesprávné uživatelské jméno nebo heslo.", "22 sekund", "Pouze pro vývoj"},
		Slovak:  {"Prihlásiť sa", "Povoliť", "Zamietnuť", "Nesprávne používateľské meno alebo heslo.", "22 sekúnd", "Iba na vývoj"},
		Russian: {"Войти", "Разрешить", "Отклонить", "Неверное имя пользователя или пароль.", "22 секунды", "Только для разработки"},
		French:  {"Se connecter", "Autoriser", "Refuser", "Nom d’utilisateur ou mot de passe incorrect.", "22\u00a0secondes", "Développement uniquement"},
	}
	for loc := range numLocales {
		t.Run(loc.String(), func(t *testing.T) {
			w := words[loc]
			m := r.msgs[loc].text
			pages := samplePages(t, r, loc)
			for name, p := range pages {
				if got := p.doc.attr["lang"]; got != loc.String() {
					t.Errorf("%s: <html lang=%q>", name, got)
				}
				if got := p.rec.Header().Get("Content-Language"); got != loc.String() {
					t.Errorf("%s: Content-Language %q", name, got)
				}
				if len(p.doc.all("h1")) != 1 {
					t.Errorf("%s: %d <h1>", name, len(p.doc.all("h1")))
				}
				if len(p.doc.all("main")) != 1 || len(p.doc.all("title")) != 1 {
					t.Errorf("%s: no <main> or <title>", name)
				}
				for _, in := range p.doc.all("input") {
					if in.attr["type"] == "hidden" {
						continue
					}
					if labelFor(p.doc, in.attr["id"]) == "" {
						t.Errorf("%s: input %q has no label", name, in.attr["name"])
					}
				}
			}

			s := pages["signin"]
			if s.rec.Code != 200 {
				t.Errorf("sign-in status %d", s.rec.Code)
			}
			in := inputsByName(s.doc)
			if in["flow"]["value"] != "flow-1" || in["flow"]["type"] != "hidden" || in["csrf"]["value"] != "csrf-1" || in["csrf"]["type"] != "hidden" {
				t.Errorf("sign-in hidden fields: %v %v", in["flow"], in["csrf"])
			}
			if in["username"] == nil || in["password"]["type"] != "password" {
				t.Errorf("sign-in fields: %v", in)
			}
			if got := s.doc.all("button")[0].textContent(); got != w.submit {
				t.Errorf("sign-in button %q, want %q", got, w.submit)
			}
			lead := strings.Join(strings.Fields(s.doc.all("p")[1].textContent()), " ")
			if !strings.Contains(lead, "Invoice Sync") || !strings.HasPrefix(m["signin.lead"], lead[:3]) {
				t.Errorf("sign-in lead %q", lead)
			}
			if strings.Contains(s.body, w.failed) || strings.Contains(s.body, w.dev) || strings.Contains(s.body, `role="alert"`) {
				t.Error("plain sign-in shows an error, a throttle or the dev mark")
			}
			form := s.doc.all("form")[0]
			if form.attr["method"] != "post" {
				t.Errorf("sign-in form method %q", form.attr["method"])
			}
			if _, ok := form.attr["action"]; ok {
				t.Errorf("sign-in form has action %q though none was given", form.attr["action"])
			}

			f := pages["signin-failed"]
			if f.rec.Code != 401 || !strings.Contains(f.body, w.failed) {
				t.Errorf("failed sign-in: status %d, message missing", f.rec.Code)
			}
			if in := inputsByName(f.doc); in["username"]["value"] != "alice" || in["username"]["aria-invalid"] != "true" {
				t.Errorf("failed sign-in user name field: %v", in["username"])
			}

			th := pages["signin-throttled"]
			if th.rec.Code != 429 || !strings.Contains(th.body, w.seconds) || th.rec.Header().Get("Retry-After") != "22" {
				t.Errorf("throttled sign-in: status %d, Retry-After %q, %q missing", th.rec.Code, th.rec.Header().Get("Retry-After"), w.seconds)
			}
			if strings.Contains(th.body, w.failed) {
				t.Error("throttled sign-in says the password was wrong")
			}

			d := pages["signin-dev"]
			din := inputsByName(d.doc)
			if din["password"] != nil || din["username"] == nil || din["flow"]["value"] != "flow-1" {
				t.Errorf("dev sign-in fields: %v", din)
			}
			if !strings.Contains(d.body, w.dev) || !strings.Contains(d.doc.all("title")[0].textContent(), w.dev) || !strings.Contains(d.body, "--dev") {
				t.Error("dev sign-in is not marked development only")
			}
			if got := d.doc.all("form")[0].attr["action"]; got != "/authorize/sign-in" {
				t.Errorf("dev sign-in action %q", got)
			}

			c := pages["consent"]
			cin := inputsByName(c.doc)
			if cin["flow"]["value"] != "flow-2" || cin["csrf"]["value"] != "csrf-2" {
				t.Errorf("consent hidden fields: %v", cin)
			}
			buttons := c.doc.all("button")
			if len(buttons) != 2 {
				t.Fatalf("consent has %d buttons", len(buttons))
			}
			for i, want := range []struct{ value, text string }{{"allow", w.allow}, {"deny", w.deny}} {
				b := buttons[i]
				if b.attr["type"] != "submit" || b.attr["name"] != "decision" || b.attr["value"] != want.value || b.textContent() != want.text {
					t.Errorf("consent button %d: %v %q", i, b.attr, b.textContent())
				}
			}
			for _, want := range []string{"Invoice Sync", "Copies invoices to the ledger.", "alice", "Read your invoices", "invoices:read", "invoices:write", "Know who you are", m["consent.new"], m["consent.granted"], m["consent.policy"], m["consent.tos"], m["consent.website"]} {
				if !strings.Contains(c.body, want) {
					t.Errorf("consent lacks %q", want)
				}
			}
			lists := c.doc.all("ul")
			var scopes []string
			for _, ul := range lists {
				if strings.Contains(ul.attr["class"], "scopes") {
					var items []string
					for _, li := range ul.all("li") {
						items = append(items, strings.Join(strings.Fields(li.textContent()), " "))
					}
					scopes = append(scopes, strings.Join(items, "|"))
				}
			}
			if want := []string{"Read your invoices invoices:read|invoices:write", "Know who you are openid"}; strings.Join(scopes, "/") != strings.Join(want, "/") {
				t.Errorf("consent scope lists %q, want new then granted %q", scopes, want)
			}
			if got := c.doc.all("form")[0].attr["action"]; got != "/authorize/consent" {
				t.Errorf("consent action %q", got)
			}

			for _, p := range []Problem{UnknownClient, BadRedirectURI, InvalidRequest, SessionExpired, CSRFFailed, ServerError} {
				e := pages["error-"+string(p)]
				if e.rec.Code != 400 {
					t.Errorf("error %s: status %d", p, e.rec.Code)
				}
				title := m["error."+string(p)+".title"]
				if got := e.doc.all("h1")[0].textContent(); got != title {
					t.Errorf("error %s: h1 %q, want %q", p, got, title)
				}
				if !strings.Contains(e.doc.all("title")[0].textContent(), title) || !strings.Contains(e.body, m["error."+string(p)+".message"]) || !strings.Contains(e.body, m[p.hint()]) {
					t.Errorf("error %s: title, message or hint missing", p)
				}
				if len(e.doc.all("form")) != 0 || len(e.doc.all("a")) != 0 {
					t.Errorf("error %s: has a form or a link", p)
				}
				if !strings.Contains(e.body, "redirect_uri is not registered") || !strings.Contains(e.body, m["error.detail"]) {
					t.Errorf("error %s: detail missing", p)
				}
			}
		})
	}
}

func labelFor(doc *node, id string) string {
	for _, l := range doc.all("label") {
		if l.attr["for"] == id && id != "" {
			return l.textContent()
		}
	}
	return ""
}

// TestSecurityHeaders: every page, including the bare 500 written when a
// page cannot be rendered, carries the headers.
func TestSecurityHeaders(t *testing.T) {
	r := newRenderer(t)
	check := func(t *testing.T, name string, h http.Header, contentType string) {
		t.Helper()
		csp := h.Get("Content-Security-Policy")
		for _, d := range []string{"default-src 'none'", "style-src 'sha256-", "form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'"} {
			if !strings.Contains(csp, d) {
				t.Errorf("%s: CSP %q lacks %q", name, csp, d)
			}
		}
		if strings.Contains(csp, "unsafe") || strings.Contains(csp, "script-src") {
			t.Errorf("%s: CSP %q", name, csp)
		}
		for k, want := range map[string]string{
			"X-Frame-Options":        "DENY",
			"Referrer-Policy":        "no-referrer",
			"Cache-Control":          "no-store",
			"X-Content-Type-Options": "nosniff",
			"Content-Type":           contentType,
		} {
			if got := h.Get(k); got != want {
				t.Errorf("%s: %s = %q, want %q", name, k, got, want)
			}
		}
	}
	for name, p := range samplePages(t, r, Czech) {
		check(t, name, p.rec.Header(), "text/html; charset=utf-8")
	}
	rec := httptest.NewRecorder()
	if err := r.SignIn(rec, 200, English, SignIn{Action: "https://evil.example/steal", RetryAfter: 5}); err == nil {
		t.Fatal("a foreign action was accepted")
	}
	if rec.Code != 500 || strings.Contains(rec.Body.String(), "evil") || rec.Header().Get("Retry-After") != "" {
		t.Errorf("failed render: status %d, Retry-After %q, body %q", rec.Code, rec.Header().Get("Retry-After"), rec.Body.String())
	}
	check(t, "500", rec.Header(), "text/plain; charset=utf-8")
}

// TestStyleHash: the CSP allows exactly the stylesheet the page carries, and
// nothing on the page needs more than the CSP gives (no style attribute, no
// script, nothing loaded from anywhere).
func TestStyleHash(t *testing.T) {
	r := newRenderer(t)
	for name, p := range samplePages(t, r, French) {
		styles := p.doc.all("style")
		if len(styles) != 1 {
			t.Fatalf("%s: %d <style> elements", name, len(styles))
		}
		sum := sha256.Sum256([]byte(styles[0].textContent()))
		want := "style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "';"
		if csp := p.rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, want) {
			t.Errorf("%s: CSP %q does not allow the page's stylesheet (%s)", name, csp, want)
		}
		if strings.Contains(p.body, "style=") || len(p.doc.all("script")) > 0 || len(p.doc.all("link")) > 0 || len(p.doc.all("img")) > 0 || len(p.doc.all("iframe")) > 0 {
			t.Errorf("%s: inline style attribute, script, link, img or iframe", name)
		}
		for _, tag := range []string{"script", "img", "iframe", "link", "source", "use", "image"} {
			for _, n := range p.doc.all(tag) {
				t.Errorf("%s: <%s %v>", name, tag, n.attr)
			}
		}
	}
}

// TestEscaping: whatever the caller passes is text on the page, never markup,
// and only http(s) links become links.
func TestEscaping(t *testing.T) {
	r := newRenderer(t)
	hostile := `"><script>alert('x')</script><a href="javascript:alert(1)">`
	pages := map[string]rendered{
		"signin": render(t, func(w http.ResponseWriter) error {
			return r.SignIn(w, 200, English, SignIn{Client: hostileClient(), Flow: hostile, CSRF: hostile, UserName: hostile, Failed: true})
		}),
		"consent": render(t, func(w http.ResponseWriter) error {
			return r.Consent(w, 200, Russian, Consent{Client: hostileClient(), Flow: hostile, CSRF: hostile, User: hostile,
				Scopes: []Scope{{Name: hostile, Description: hostile}, {Name: hostile, AlreadyGranted: true}}})
		}),
		"error": render(t, func(w http.ResponseWriter) error {
			return r.Error(w, 400, Slovak, ErrorPage{Problem: Problem(hostile), Detail: hostile})
		}),
	}
	for name, p := range pages {
		if n := len(p.doc.all("script")) + len(p.doc.all("img")) + len(p.doc.all("b")); n != 0 {
			t.Errorf("%s: caller's markup became %d elements", name, n)
		}
		if strings.Contains(strings.ToLower(p.body), "javascript:") && !strings.Contains(p.body, "&#34;javascript:") && !strings.Contains(p.body, "&quot;javascript:") {
			t.Errorf("%s: javascript: appears unescaped", name)
		}
		for _, a := range p.doc.all("a") {
			href := a.attr["href"]
			if !strings.HasPrefix(href, "https://") && !strings.HasPrefix(href, "http://") {
				t.Errorf("%s: link to %q", name, href)
			}
		}
		for _, in := range p.doc.all("input") {
			if n := in.attr["name"]; (n == "flow" || n == "csrf" || n == "username") && in.attr["value"] != hostile {
				t.Errorf("%s: %s value %q, want it back unchanged", name, n, in.attr["value"])
			}
		}
	}
	if !strings.Contains(pages["signin"].body, "&lt;script&gt;alert(&#34;name&#34;)&lt;/script&gt;") {
		t.Error("sign-in: the client name is not shown as text")
	}
	if !strings.Contains(pages["signin"].doc.textContent(), `<script>alert("name")</script>`) {
		t.Error("sign-in: the client name does not read back as written")
	}
	c := pages["consent"]
	if got := c.doc.textContent(); !strings.Contains(got, hostileClient().Description) || !strings.Contains(got, hostile) {
		t.Error("consent: description or user name does not read back as text")
	}
	links := c.doc.all("a")
	if len(links) != 1 || links[0].attr["href"] != "https://app.example.com/home?a=1&b=%3c2%3e" || links[0].attr["rel"] != "noopener noreferrer" {
		for _, l := range links {
			t.Logf("link %v", l.attr)
		}
		t.Errorf("consent links: want only the website, got %d", len(links))
	}
	if e := pages["error"]; !strings.Contains(e.doc.all("h1")[0].textContent(), r.msgs[Slovak].text["error.server_error.title"]) {
		t.Error("an unknown problem is not shown as a server error")
	}
}

func TestWebURL(t *testing.T) {
	for raw, ok := range map[string]bool{
		"https://example.com":                  true,
		"http://example.com/privacy?x=1":       true,
		"HTTPS://Example.com/tos":              true,
		"https://[::1]:8443/":                  true,
		"":                                     false,
		"javascript:alert(1)":                  false,
		"JavaScript:alert(1)":                  false,
		" javascript:alert(1)":                 false,
		"java\tscript:alert(1)":                false,
		"javascript://example.com/%0aalert(1)": false,
		"data:text/html,<script>":              false,
		"vbscript:x":                           false,
		"//evil.example/":                      false,
		"/relative":                            false,
		"example.com":                          false,
		"https://user:pw@evil.example/":        false,
		"https:///nohost":                      false,
		"http:evil.example":                    false,
		"ftp://example.com/":                   false,
		"https://exa mple.com/":                false,
	} {
		if _, got := webURL(raw); got != ok {
			t.Errorf("webURL(%q) = %v, want %v", raw, got, ok)
		}
	}
}

func TestFormAction(t *testing.T) {
	r := newRenderer(t)
	for _, tc := range []struct {
		redirect, want string // want "" means refused
	}{
		{"https://app.example.com/callback?x=1", "form-action 'self' https://app.example.com;"},
		{"https://App.Example.com:8443/cb", "form-action 'self' https://app.example.com:8443;"},
		{"http://127.0.0.1:51234/callback", "form-action 'self' http://127.0.0.1:51234;"},
		{"http://[::1]:51234/", "form-action 'self' http://[::1]:51234;"},
		{"com.example.app:/oauth2redirect", "form-action 'self' com.example.app:;"},
		{"https://evil.example;script-src *", ""},
		{"https://evil.example 'unsafe-inline'/", ""},
		{"https://ev'il.example/", ""},
		{"javascript:alert(1)", ""},
		{"data:text/html,x", ""},
		{"/relative/cb", ""},
		{"https:///nohost", ""},
		{"1abc:/x", ""},
	} {
		rec := httptest.NewRecorder()
		err := r.Consent(rec, 200, English, Consent{Client: Client{Name: "c"}, RedirectURI: tc.redirect})
		csp := rec.Header().Get("Content-Security-Policy")
		if tc.want == "" {
			if err == nil || rec.Code != 500 || !strings.Contains(csp, "form-action 'self';") {
				t.Errorf("%q: err %v, status %d, CSP %q; want refused", tc.redirect, err, rec.Code, csp)
			}
			continue
		}
		if err != nil || !strings.Contains(csp, tc.want) {
			t.Errorf("%q: err %v, CSP %q, want %q", tc.redirect, err, csp, tc.want)
		}
	}
	// Sign-in may also end in the redirect (consent already given).
	rec := httptest.NewRecorder()
	if err := r.SignIn(rec, 200, English, SignIn{RedirectURI: "https://app.example.com/cb"}); err != nil || !strings.Contains(rec.Header().Get("Content-Security-Policy"), "form-action 'self' https://app.example.com;") {
		t.Errorf("sign-in form-action: %v %q", err, rec.Header().Get("Content-Security-Policy"))
	}
	// The error page has no form: 'self' only.
	rec = httptest.NewRecorder()
	_ = r.Error(rec, 0, English, ErrorPage{Problem: BadRedirectURI})
	if !strings.Contains(rec.Header().Get("Content-Security-Policy"), "form-action 'self';") || rec.Code != 400 {
		t.Errorf("error page: status %d, CSP %q", rec.Code, rec.Header().Get("Content-Security-Policy"))
	}
}

func TestActionAndStatus(t *testing.T) {
	r := newRenderer(t)
	for action, ok := range map[string]bool{
		"":                       true,
		"/authorize":             true,
		"/authorize/consent?x=1": true,
		"//evil.example/":        false,
		"/\\evil.example/":       false,
		"https://evil.example":   false,
		"javascript:alert(1)":    false,
		"relative":               false,
		"/a\nb":                  false,
	} {
		rec := httptest.NewRecorder()
		err := r.Consent(rec, 200, English, Consent{Action: action})
		if (err == nil) != ok || (rec.Code == 200) != ok {
			t.Errorf("action %q: err %v, status %d", action, err, rec.Code)
		}
	}
	for status, want := range map[int]int{0: 200, 200: 200, 401: 401, 429: 429, 503: 503, 42: 500, 302: 302, 1000: 500} {
		rec := httptest.NewRecorder()
		err := r.SignIn(rec, status, English, SignIn{})
		if rec.Code != want || (err != nil) != (want == 500) {
			t.Errorf("status %d: wrote %d, err %v", status, rec.Code, err)
		}
	}
	rec := httptest.NewRecorder()
	if err := r.SignIn(rec, 200, Locale(99), SignIn{}); err != nil || !strings.Contains(rec.Body.String(), `<html lang="en"`) {
		t.Errorf("unknown locale: %v", err)
	}
}

// TestConcurrent renders from many goroutines at once (run with -race).
func TestConcurrent(t *testing.T) {
	r := newRenderer(t)
	done := make(chan struct{})
	for i := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for j := range 20 {
				loc := Locale((i + j) % int(numLocales))
				_ = r.SignIn(httptest.NewRecorder(), 200, loc, SignIn{RetryAfter: j})
				_ = r.Consent(httptest.NewRecorder(), 200, loc, Consent{Scopes: []Scope{{Name: "a"}}})
				_ = r.Negotiate("cs, fr;q=0.5", "")
			}
		}()
	}
	for range 8 {
		<-done
	}
}
