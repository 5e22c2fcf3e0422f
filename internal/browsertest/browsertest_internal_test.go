package browsertest

import (
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestFindChromium(t *testing.T) {
	onPath := func(names ...string) func(string) (string, error) {
		return func(name string) (string, error) {
			for _, n := range names {
				if n == name {
					return "/usr/bin/" + name, nil
				}
			}
			return "", errors.New("not found")
		}
	}
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "KEYMINT_CHROMIUM" {
				return v
			}
			return ""
		}
	}
	for _, tc := range []struct {
		name, env string
		path      []string
		want      string // the executable, or words of the error
	}{
		{"chromium first", "", []string{"google-chrome", "chromium"}, "/usr/bin/chromium"},
		{"chromium-browser", "", []string{"chromium-browser"}, "/usr/bin/chromium-browser"},
		{"google-chrome", "", []string{"google-chrome"}, "/usr/bin/google-chrome"},
		{"the variable wins", "/opt/chrome", []string{"chromium", "/opt/chrome"}, "/opt/chrome"},
		{"the variable must exist", "/opt/nothing", []string{"chromium"}, "error: KEYMINT_CHROMIUM=/opt/nothing"},
		{"none", "", nil, "error: ./scripts/test"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := findChromium(env(tc.env), onPath(tc.path...))
			if want, ok := strings.CutPrefix(tc.want, "error: "); ok {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("got %q, %v; want an error that says %q", got, err, want)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// TestBrowserLeavesNoProcess: once a test with a browser has ended, no
// Chromium process of its profile runs and the profile is gone.
func TestBrowserLeavesNoProcess(t *testing.T) {
	var profile string
	t.Run("browse", func(t *testing.T) {
		b := New(t)
		profile = b.profile
		b.Navigate("about:blank")
		if len(processesUsing(profile)) == 0 {
			t.Fatalf("no process found with --user-data-dir=%s: the leftover check would see nothing", profile)
		}
	})
	if pids := processesUsing(profile); len(pids) > 0 {
		t.Errorf("Chromium processes still running: %v", pids)
	}
	if _, err := os.Stat(profile); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("profile %s: %v, want it removed", profile, err)
	}
}

// TestBrowserStaysOnMachine: what a page loads from another host, over
// http or https, is reported by OffMachine and reaches the offline proxy and
// no further; a page of another host is the proxy's refusal.
func TestBrowserStaysOnMachine(t *testing.T) {
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(`<!doctype html><title>x</title><h1>local</h1>
<img src="http://keymint-test.example/logo.png"><img src="https://keymint-test.example/logo.png">`))
	}))
	defer page.Close()
	b := New(t)
	b.Navigate(page.URL)
	if got := b.Text("h1"); got != "local" {
		t.Fatalf("loopback page: %q", got)
	}
	if got, want := b.OffMachine(), []string{"GET http://keymint-test.example/logo.png", "GET https://keymint-test.example/logo.png"}; !equalSets(got, want) {
		t.Errorf("OffMachine() = %q, want %q", got, want)
	}
	refused := b.proxy.refused()
	for _, want := range []string{"GET http://keymint-test.example/logo.png", "CONNECT keymint-test.example:443"} {
		if !slices.Contains(refused, want) {
			t.Errorf("the proxy did not refuse %q; it refused %q", want, refused)
		}
	}
	if status := b.Navigate("http://keymint-test.example/"); status != http.StatusForbidden ||
		!strings.Contains(b.Text("body"), "reaches only 127.0.0.1") {
		t.Errorf("another host: status %d, page %q", status, b.Text("body"))
	}
}

func TestOffMachine(t *testing.T) {
	for u, want := range map[string]bool{
		"http://127.0.0.1:8080/x": false, "http://localhost/": false, "http://[::1]:9/": false, "http://127.1.2.3/": false,
		"data:text/plain,x": false, "about:blank": false, "chrome-error://chromewebdata/": false,
		"http://example.com/": true, "https://10.0.0.1/": true, "ws://192.168.1.1/": true, "http://[::ffff:8.8.8.8]/": true,
	} {
		if got := offMachine(u); got != want {
			t.Errorf("offMachine(%q) = %v, want %v", u, got, want)
		}
	}
}

func equalSets(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}
