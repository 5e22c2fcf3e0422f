package browsertest_test

import (
	"bytes"
	"html/template"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/keymint/keymint/internal/browsertest"
)

// signInPage is a sign-in form like the authorization endpoint's: it posts
// back to itself with a hidden state, and the POST redirects to the
// client's callback with code and state, as a 302.
var signInPage = template.Must(template.New("").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
{{if .Viewport}}<meta name="viewport" content="width=device-width, initial-scale=1">{{end}}
<title>Sign in</title></head>
<body><h1>Sign in to keymint</h1>
<form method="post" action="/">
<label for="user">User</label> <input id="user" name="user" autocomplete="username">
<input type="hidden" name="state" value="y">
<button id="submit" type="submit">Continue</button>
</form></body></html>
`))

// newSignInServer serves signInPage at / and, on a POST with user=ada,
// redirects to callback with code=x and the form's state.
func newSignInServer(t *testing.T, callback string, viewport bool) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path != "/":
			http.NotFound(w, r)
		case r.Method == http.MethodGet:
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			signInPage.Execute(w, struct{ Viewport bool }{viewport})
		case r.Method == http.MethodPost && r.PostFormValue("user") == "ada":
			http.Redirect(w, r, callback+"?code=x&state="+r.PostFormValue("state"), http.StatusFound)
		default:
			http.Error(w, "want user=ada, got "+r.PostFormValue("user"), http.StatusBadRequest)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestBrowserSmoke signs in on a form and follows the redirect to a
// client's callback, as the authorization-code flow will, and takes a
// screenshot.
func TestBrowserSmoke(t *testing.T) {
	cb := browsertest.NewCallback(t)
	srv := newSignInServer(t, cb.URL, true)
	b := browsertest.New(t)

	if status := b.Navigate(srv.URL); status != http.StatusOK {
		t.Fatalf("sign-in page: status %d", status)
	}
	if got := b.Text("h1"); got != "Sign in to keymint" {
		t.Errorf("heading %q", got)
	}
	b.Fill("#user", "ada")
	if status := b.Click("#submit"); status != http.StatusOK {
		t.Errorf("callback page: status %d", status)
	}
	q := cb.Query()
	if q.Get("code") != "x" || q.Get("state") != "y" {
		t.Errorf("callback query %v, want code=x state=y", q)
	}
	if got, want := b.CurrentURL(), cb.URL+"?code=x&state=y"; got != want {
		t.Errorf("the browser is at %s, want %s", got, want)
	}
	if got := b.Text("#callback"); got != "Callback received" {
		t.Errorf("callback page says %q", got)
	}
	if off := b.OffMachine(); len(off) > 0 {
		t.Errorf("requests that would have left the machine: %v", off)
	}

	shot := filepath.Join(t.TempDir(), "callback.png")
	b.Screenshot(shot)
	width, height := pngSize(t, shot)
	if width != 1280 || height < 900 {
		t.Errorf("screenshot %dx%d, want the 1280-pixel-wide desktop window, at least 900 high", width, height)
	}
}

// TestBrowserPhone: the phone viewport is a phone's, a page with a viewport
// meta tag fits it while one without is laid out 980px wide (what a
// "readable on a phone" check catches), and Click taps.
func TestBrowserPhone(t *testing.T) {
	cb := browsertest.NewCallback(t)
	fits := newSignInServer(t, cb.URL, true)
	desktopOnly := newSignInServer(t, cb.URL, false)
	b := browsertest.New(t, browsertest.Phone())

	b.Navigate(fits.URL)
	if w := browsertest.Eval[int](b, `window.innerWidth`); w != browsertest.PhoneWidth {
		t.Errorf("innerWidth %d with a viewport meta tag, want %d", w, browsertest.PhoneWidth)
	}
	if !browsertest.Eval[bool](b, `matchMedia("(pointer: coarse)").matches`) {
		t.Error("no touch screen: (pointer: coarse) does not match")
	}
	if browsertest.Eval[bool](b, `document.documentElement.scrollWidth > innerWidth`) {
		t.Error("the page is wider than the phone")
	}
	shot := filepath.Join(t.TempDir(), "phone.png")
	b.Screenshot(shot)
	if width, _ := pngSize(t, shot); width != 3*browsertest.PhoneWidth {
		t.Errorf("screenshot %d pixels wide, want %d (390 CSS pixels at 3 device pixels each)", width, 3*browsertest.PhoneWidth)
	}

	b.Navigate(desktopOnly.URL)
	if w := browsertest.Eval[int](b, `window.innerWidth`); w != 980 {
		t.Errorf("innerWidth %d without a viewport meta tag, want 980 as on a phone", w)
	}

	b.Navigate(fits.URL)
	b.Fill("#user", "ada")
	b.Click("#submit") // a tap
	if q := cb.Query(); q.Get("code") != "x" {
		t.Errorf("callback query %v after a tap", q)
	}
}

func pngSize(t *testing.T, path string) (width, height int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) == 0 {
		t.Fatalf("%s is empty", path)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s is not a PNG: %v", path, err)
	}
	if _, err := png.Decode(bytes.NewReader(data)); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return cfg.Width, cfg.Height
}
