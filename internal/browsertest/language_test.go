package browsertest_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/keymint/keymint/internal/browsertest"
)

// TestBrowserLanguage: with Language, the tab's requests carry the
// Accept-Language asked for, and its scripts see it as navigator.language;
// without, they do not.
func TestBrowserLanguage(t *testing.T) {
	got := make(chan string, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		got <- r.Header.Get("Accept-Language")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte("<!doctype html><title>lang</title><h1>lang</h1>\n"))
	}))
	t.Cleanup(srv.Close)

	b := browsertest.New(t, browsertest.Language("cs", "en"))
	b.Navigate(srv.URL)
	if h := <-got; h != "cs,en;q=0.9" {
		t.Errorf("Accept-Language %q, want cs,en;q=0.9", h)
	}
	if langs := browsertest.Eval[[]string](b, `navigator.languages`); len(langs) != 2 || langs[0] != "cs" || langs[1] != "en" {
		t.Errorf("navigator.languages %q, want [cs en]", langs)
	}
	if lang := browsertest.Eval[string](b, `navigator.language`); lang != "cs" {
		t.Errorf("navigator.language %q, want cs", lang)
	}
	b.Navigate(srv.URL + "/?again") // every request, not the first only
	if h := <-got; h == "" || h[:2] != "cs" {
		t.Errorf("Accept-Language of the second request %q, want cs first", h)
	}

	plain := browsertest.New(t)
	plain.Navigate(srv.URL)
	if h := <-got; h == "" || h[:2] == "cs" {
		t.Errorf("Accept-Language without Language: %q, want the browser's own", h)
	}
}
