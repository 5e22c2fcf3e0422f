package browsertest

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// offlineProxy is the browser's HTTP proxy: Chromium sends it every request
// that is not to a loopback address, and it refuses each one (403, and no
// tunnel for CONNECT), noting where it was going. So nothing a page links
// to, loads or redirects to, and none of Chromium's own calls home (it
// makes some even so, for updates and sign-in), can reach another machine.
type offlineProxy struct {
	addr string
	srv  *http.Server
	mu   sync.Mutex
	seen []string
}

func startOfflineProxy(t testing.TB) *offlineProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("browsertest: listen for the offline proxy: %v", err)
	}
	p := &offlineProxy{addr: ln.Addr().String()}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 5 * time.Second}
	go p.srv.Serve(ln)
	return p
}

func (p *offlineProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	target := r.Host // host:port for CONNECT
	if r.Method != http.MethodConnect {
		target = r.URL.String()
	}
	p.mu.Lock()
	p.seen = append(p.seen, r.Method+" "+target)
	p.mu.Unlock()
	http.Error(w, "browsertest: this browser reaches only 127.0.0.1", http.StatusForbidden)
}

// refused lists what the proxy refused, the browser's own requests too.
func (p *offlineProxy) refused() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.seen...)
}

func (p *offlineProxy) close() { p.srv.Close() }

// pageRequests notes the tab's requests for another machine, from the
// DevTools network events, which only the page's requests raise.
type pageRequests struct {
	mu   sync.Mutex
	off  []string
	done chan struct{} // closed when the tab has ended
}

// watchPageRequests subscribes to the tab's requests now and notes them
// until the tab ends.
func watchPageRequests(tab context.Context) *pageRequests {
	w := &pageRequests{done: make(chan struct{})}
	events := chromedp.Events(tab, network.RequestWillBeSent)
	go func() {
		defer close(w.done)
		for ev, err := range events {
			if err != nil {
				return
			}
			if ev.Request != nil && offMachine(ev.Request.URL) {
				w.mu.Lock()
				w.off = append(w.off, ev.Request.Method+" "+ev.Request.URL)
				w.mu.Unlock()
			}
		}
	}()
	return w
}

func (w *pageRequests) list() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.off...)
}

// offMachine reports whether a request to rawURL would leave the machine:
// a network scheme and a host that is not loopback.
func offMachine(rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil {
		return true
	}
	switch u.Scheme {
	case "http", "https", "ws", "wss", "ftp":
	default:
		return false // data:, blob:, about:, chrome-error: ...
	}
	host := u.Hostname()
	if host == "localhost" {
		return false
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback()
}

// OffMachine lists the requests the page made so far for another machine,
// as "METHOD URL", each refused by the browser's proxy. A page of
// keymint's should make none: no fonts, scripts, images or redirects
// elsewhere.
func (b *Browser) OffMachine() []string { return b.requests.list() }
