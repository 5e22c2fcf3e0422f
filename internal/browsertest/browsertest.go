// Package browsertest drives a real, headless Chromium from Go tests, so
// that keymint's sign-in and consent pages are tested as a person uses them:
// pages rendered by a browser, forms filled and submitted, redirects
// followed to a client's redirect URI, and screenshots to look at, on a
// desktop window or a phone-sized one.
//
// It uses the system's Chromium (Debian's chromium package, which
// scripts/test installs), never a browser downloaded by a tool, and a test
// without one fails rather than skips: the authorization-code flow must be
// tested by a browser on every run. The browser talks only to the loopback
// addresses: host names other than localhost do not resolve, and every
// other request goes to a proxy of the test's own that refuses it (see
// [Browser.OffMachine]).
//
// A flow test reads as the steps a person takes:
//
//	cb := browsertest.NewCallback(t) // the client's redirect_uri
//	// ... register a client with redirect URI cb.URL, build authorizeURL ...
//	b := browsertest.New(t)
//	b.Navigate(authorizeURL)
//	b.Fill("#username", "ada")
//	b.Fill("#password", password)
//	b.Click("button[type=submit]") // to the consent page
//	b.Click("#allow")              // redirected to cb.URL
//	q := cb.Query()                // code and state
//
// Each helper fails the test with what it was doing and where the browser
// was; Phone gives the same browser a phone's screen, and Language a user's
// languages.
package browsertest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Browser is one headless Chromium with one tab, for one test. Its methods
// fail the test (t.Fatal) when an action does not succeed in time, so a
// flow test reads as the steps a person takes. It is not for use from
// several goroutines at once.
type Browser struct {
	t   testing.TB
	tab context.Context // the tab; its browser lives until the session ends
	// session ends when the whole browser's time is up (Timeout).
	session       context.Context
	timeout       time.Duration
	actionTimeout time.Duration
	phone         bool
	proxy         *offlineProxy
	requests      *pageRequests
	profile       string // Chromium's user data directory
}

// Option changes how New starts the browser.
type Option func(*config)

type config struct {
	timeout, actionTimeout time.Duration
	phone                  bool
	language               string // Accept-Language, when set
}

// Timeout bounds the whole browser session (default 60s, or less when the
// test's own deadline comes sooner): when it passes, Chromium is stopped and
// the next action fails the test.
func Timeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// ActionTimeout bounds each action, such as waiting for an element or for
// the page after a click (default 10s).
func ActionTimeout(d time.Duration) Option { return func(c *config) { c.actionTimeout = d } }

// Phone makes the tab a phone: a 390×844 CSS-pixel portrait viewport at a
// device pixel ratio of 3 (an iPhone 12 to 15), with mobile emulation (so
// the page's <meta name="viewport"> counts, and a page without one is laid
// out 980px wide and shrunk, as on a real phone) and touch, so that Click
// taps. It is for the "readable on a phone" checks.
func Phone() Option { return func(c *config) { c.phone = true } }

// Phone's viewport, in CSS pixels.
const (
	PhoneWidth  = 390
	PhoneHeight = 844
	phoneScale  = 3
)

// The desktop window, in CSS pixels.
const (
	desktopWidth  = 1280
	desktopHeight = 900
)

// New starts a headless Chromium with a fresh, temporary profile and opens
// one tab; the test's cleanup stops it and checks that none of its
// processes is left. A machine without Chromium fails the test, saying how
// to install it.
func New(t testing.TB, opts ...Option) *Browser {
	t.Helper()
	cfg := config{timeout: 60 * time.Second, actionTimeout: 10 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	if d, ok := deadline(t); ok {
		// Leave the test time to report and clean up.
		if left := time.Until(d) - 5*time.Second; left < cfg.timeout {
			cfg.timeout = max(left, time.Second)
		}
	}
	exe, err := findChromium(os.Getenv, exec.LookPath)
	if err != nil {
		t.Fatal(err)
	}
	proxy := startOfflineProxy(t)
	profile := filepath.Join(t.TempDir(), "profile")
	var output bytes.Buffer // Chromium's stdout and stderr, shown if it fails to start
	out := &lockedWriter{w: &output}

	session, endSession := context.WithTimeout(context.Background(), cfg.timeout)
	allocOpts := allocatorOptions(exe, profile, proxy.addr, out)
	if cfg.language != "" {
		allocOpts = append(allocOpts, chromedp.Flag("lang", firstLanguage(cfg.language)))
	}
	allocCtx, stopAlloc := chromedp.NewExecAllocator(session, allocOpts...)
	logf := guardedLogf(t)
	tab, closeTab := chromedp.NewContext(allocCtx, chromedp.WithLogf(logf.printf), chromedp.WithErrorf(logf.printf))
	b := &Browser{t: t, tab: tab, session: session, timeout: cfg.timeout, actionTimeout: cfg.actionTimeout, phone: cfg.phone, proxy: proxy, profile: profile}

	t.Cleanup(func() {
		// Close the browser gracefully, then make sure: the allocator's
		// cancel kills Chromium if it still runs and waits for it.
		closed := make(chan error, 1)
		go func() { closed <- chromedp.Cancel(tab) }()
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			t.Errorf("browsertest: Chromium did not close within 10s; killing it")
		}
		closeTab()
		stopAlloc()
		endSession()
		if b.requests != nil {
			<-b.requests.done
		}
		logf.stop()
		if left := awaitGone(profile, 10*time.Second); len(left) > 0 {
			t.Errorf("browsertest: Chromium left processes behind (killed now): %v", left)
		}
		proxy.close()
	})

	// The first action on the tab starts Chromium; its life is bound to the
	// session context, not to this call's.
	start := time.Now()
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("browsertest: start %s: %v\n%s", exe, err, tail(out.String(), 4000))
	}
	b.requests = watchPageRequests(tab)
	setup := []chromedp.Action[chromedp.Void]{chromedp.EmulateViewport(desktopWidth, desktopHeight)}
	if cfg.phone {
		setup = []chromedp.Action[chromedp.Void]{chromedp.EmulateViewport(PhoneWidth, PhoneHeight,
			chromedp.EmulateScale(phoneScale), chromedp.EmulatePortrait, chromedp.EmulateMobile, chromedp.EmulateTouch)}
	}
	if cfg.language != "" {
		setup = append(setup, acceptLanguage(cfg.language))
	}
	b.do("set up the tab", setup...)
	t.Logf("browsertest: %s started in %s", exe, time.Since(start).Round(time.Millisecond))
	return b
}

// deadline is t's deadline, for a *testing.T.
func deadline(t testing.TB) (time.Time, bool) {
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		return d.Deadline()
	}
	return time.Time{}, false
}

// lockedWriter is an io.Writer that chromedp's output goroutine and the
// test may use at once.
type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}

// testLog sends chromedp's messages to t.Logf until the test's cleanup
// stops it, so a late message from a chromedp goroutine cannot log after
// the test has ended.
type testLog struct {
	mu      sync.Mutex
	t       testing.TB
	stopped bool
}

func guardedLogf(t testing.TB) *testLog { return &testLog{t: t} }

func (l *testLog) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.stopped {
		l.t.Logf("chromedp: "+format, args...)
	}
}

func (l *testLog) stop() {
	l.mu.Lock()
	l.stopped = true
	l.mu.Unlock()
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
