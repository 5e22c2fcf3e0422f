package flowtest_test

import (
	"net/http"
	"net/url"
	"path/filepath"
	"testing"

	"golang.org/x/oauth2"

	"github.com/keymint/keymint/internal/browsertest"
	"github.com/keymint/keymint/internal/flowtest"
)

// box is where an element is drawn in the viewport, and whether a tap at
// its middle reaches it.
type box struct {
	Top, Bottom, Left, Right float64
	Shown                    bool // rendered, not hidden, with a size
	OnTop                    bool // the element at its middle is it (or inside it)
}

func boxOf(b *browsertest.Browser, selector string) box {
	return browsertest.Eval[box](b, `(() => {
		const e = document.querySelector(`+"`"+selector+"`"+`);
		if (!e) return {};
		const r = e.getBoundingClientRect(), st = getComputedStyle(e);
		const hit = document.elementFromPoint((r.left + r.right) / 2, (r.top + r.bottom) / 2);
		return {Top: r.top, Bottom: r.bottom, Left: r.left, Right: r.right,
			Shown: st.visibility === "visible" && st.display !== "none" && r.width > 0 && r.height > 0,
			OnTop: hit !== null && e.contains(hit)};
	})()`)
}

// fitsPhone fails the test if the page is wider than the phone's screen.
func fitsPhone(t *testing.T, b *browsertest.Browser, page string) {
	t.Helper()
	w := browsertest.Eval[struct{ Scroll, Inner int }](b, `({Scroll: document.documentElement.scrollWidth, Inner: innerWidth})`)
	if w.Inner != browsertest.PhoneWidth || w.Scroll > w.Inner {
		t.Errorf("%s on a phone: %d CSS pixels wide in a %d-pixel viewport (want %d, and no horizontal scroll)", page, w.Scroll, w.Inner, browsertest.PhoneWidth)
	}
}

// TestPagesOnAPhone: on a phone's screen the sign-in and consent pages fit
// the width, with no sideways scrolling, the Allow button shows on the
// first screen, without scrolling, large enough to tap, and a tap on it
// goes back to the application with a code.
func TestPagesOnAPhone(t *testing.T) {
	s := newSite(t)
	b := browsertest.New(t, browsertest.Phone())
	authURL, _ := s.authURL([]string{"openid", "profile", "email", "reports:read", "reports:write"})

	if status := b.Navigate(authURL); status != http.StatusOK {
		t.Fatalf("sign-in page: status %d", status)
	}
	fitsPhone(t, b, "the sign-in page")
	if status := flowtest.SignIn(b, "u1", userPassword); status != http.StatusOK {
		t.Fatalf("sign-in: status %d, want the consent page", status)
	}
	fitsPhone(t, b, "the consent page")
	b.Screenshot(filepath.Join(t.ArtifactDir(), "consent-phone.png"))

	allow := boxOf(b, flowtest.AllowSelector)
	switch {
	case !allow.Shown:
		t.Errorf("the Allow button is not shown: %+v", allow)
	case allow.Top < 0 || allow.Left < 0 || allow.Right > browsertest.PhoneWidth || allow.Bottom > browsertest.PhoneHeight:
		t.Errorf("the Allow button is at %+v, not within the first %dx%d screen", allow, browsertest.PhoneWidth, browsertest.PhoneHeight)
	case !allow.OnTop:
		t.Errorf("something covers the Allow button at %+v", allow)
	case allow.Bottom-allow.Top < 44:
		// 44 CSS pixels: the touch target Apple's and WCAG 2.5.5's
		// guidelines ask for.
		t.Errorf("the Allow button is %.0f CSS pixels high, too small to tap", allow.Bottom-allow.Top)
	}
	if status := flowtest.Allow(b); status != http.StatusOK { // a tap
		t.Fatalf("consent: callback status %d", status)
	}
	if q := s.cb.Query(); q.Get("code") == "" {
		t.Errorf("callback %v, want a code", q)
	}
	stayedOnMachine(t, b)
}

// TestPagesInCzech: a browser whose user reads Czech gets the sign-in and
// consent pages in Czech (server/authui's catalog), wrong password message
// included; the client's ui_locales, when it names a language keymint
// speaks, wins over the browser's.
func TestPagesInCzech(t *testing.T) {
	s := newSite(t)
	b := browsertest.New(t, browsertest.Language("cs", "en"))
	scopes := []string{"openid", "profile", "reports:read"}

	english, _ := s.authURL(scopes, oauth2.SetAuthURLParam("ui_locales", "en"))
	b.Navigate(english)
	if h1, lang := b.Text("h1"), browsertest.Eval[string](b, `document.documentElement.lang`); h1 != "Sign in" || lang != "en" {
		t.Errorf("ui_locales=en in a Czech browser: heading %q, lang %q; want the English page", h1, lang)
	}

	authURL, _ := s.authURL(scopes)
	if status := b.Navigate(authURL); status != http.StatusOK {
		t.Fatalf("sign-in page: status %d", status)
	}
	for sel, want := range map[string]string{
		"h1":                       "Přihlaste se",
		"label[for=username]":      "Uživatelské jméno",
		"label[for=password]":      "Heslo",
		"form button[type=submit]": "Přihlásit se",
		"p.lead":                   "a pokračujte do aplikace webapp",
	} {
		if got := b.Text(sel); got != want {
			t.Errorf("sign-in page %s: %q, want %q", sel, got, want)
		}
	}
	if lang, title := browsertest.Eval[string](b, `document.documentElement.lang`), browsertest.Eval[string](b, `document.title`); lang != "cs" || title != "Přihlášení · keymint" {
		t.Errorf("sign-in page: <html lang=%q>, title %q; want cs, Přihlášení · keymint", lang, title)
	}

	if status := flowtest.SignIn(b, "u1", "wrong password"); status != http.StatusUnauthorized {
		t.Errorf("wrong password: status %d, want 401", status)
	}
	if got, want := b.Text("#signin-error"), "Nesprávné uživatelské jméno nebo heslo."; got != want {
		t.Errorf("wrong password: %q, want %q", got, want)
	}
	if status := flowtest.SignIn(b, "u1", userPassword); status != http.StatusOK {
		t.Fatalf("sign-in: status %d, want the consent page", status)
	}
	for sel, want := range map[string]string{
		"h1":                   "Aplikace webapp žádá o přístup k vašemu účtu",
		"p.user":               "Přihlášený uživatel: Ada Lovelace",
		"h2":                   "Požadovaná nová oprávnění",
		flowtest.AllowSelector: "Povolit",
		"button[value=deny]":   "Zamítnout",
	} {
		if got := b.Text(sel); got != want {
			t.Errorf("consent page %s: %q, want %q", sel, got, want)
		}
	}
	if status := flowtest.Allow(b); status != http.StatusOK {
		t.Fatalf("consent: callback status %d", status)
	}
	if q := s.cb.Query(); q.Get("code") == "" {
		t.Errorf("callback %v, want a code", q)
	}
	stayedOnMachine(t, b)
}

// TestConsentDenied: a user who clicks Deny is sent back to the
// application with error=access_denied, the state and iss (RFC 6749
// §4.1.2.1, RFC 9207), the browser following the redirect from the form
// (the page's form-action allows the client's origin), and no code.
func TestConsentDenied(t *testing.T) {
	s := newSite(t)
	b := browsertest.New(t)
	authURL, _ := s.authURL([]string{"openid", "reports:read"})
	b.Navigate(authURL)
	if status := flowtest.SignIn(b, "u1", userPassword); status != http.StatusOK {
		t.Fatalf("sign-in: status %d, want the consent page", status)
	}
	if status := b.Click("button[name=decision][value=deny]"); status != http.StatusOK {
		t.Fatalf("deny: the callback page's status is %d", status)
	}
	q := s.cb.Query()
	state, _ := url.Parse(authURL)
	if q.Get("error") != "access_denied" || q.Get("state") != state.Query().Get("state") || q.Get("iss") != s.issuer || q.Has("code") {
		t.Errorf("callback %v, want error=access_denied with the state and iss, and no code", q)
	}
	stayedOnMachine(t, b)
}
