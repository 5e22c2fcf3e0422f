package browsertest

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/chromedp/chromedp"
)

// allocatorOptions are Chromium's flags: chromedp's defaults (headless, no
// first run, no background networking, extensions, sync or crash reports),
// and this package's.
func allocatorOptions(exe, profile, proxyAddr string, output *lockedWriter) []chromedp.ExecAllocatorOption {
	return append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(profile), // fresh for every browser
		chromedp.CombinedOutput(output),
		chromedp.WindowSize(desktopWidth, desktopHeight),
		// Chromium's sandbox needs user namespaces or a setuid helper, and
		// refuses to start as root without --no-sandbox; CI runs as root
		// in a container. The pages are keymint's own, served on loopback,
		// so nothing untrusted runs in the renderer. As any other user the
		// sandbox stays on.
		chromedp.Flag("no-sandbox", os.Getuid() == 0),
		chromedp.DisableGPU,
		// Nothing leaves the machine: names other than localhost do not
		// resolve, and every request that is not to a loopback address
		// (Chromium always bypasses proxies for those) goes to a proxy that
		// refuses it, so a link or redirect to a public or private address
		// fails at once instead of connecting out.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1, EXCLUDE [::1]"),
		chromedp.ProxyServer("http://"+proxyAddr),
		chromedp.Flag("proxy-bypass-list", "localhost;127.0.0.1;[::1]"),
		chromedp.Flag("disable-features", strings.Join(quietFeatures, ",")),
		chromedp.Flag("disable-component-extensions-with-background-pages", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("hide-scrollbars", true), // the same screenshots everywhere
		chromedp.Flag("mute-audio", true),
	)
}

// quietFeatures are Chromium features turned off because they call
// Google's servers in the background (the time, updates, autofill
// predictions, ...): the proxy would refuse them anyway, but they would
// crowd what OffMachine reports of the pages. chromedp's defaults turn off
// the first two.
var quietFeatures = []string{
	"Translate", "BlinkGenPropertyTrees",
	"AutofillServerCommunication", "NetworkTimeServiceQuerying", "OptimizationHints",
	"MediaRouter", "DialMediaRouteProvider", "InterestFeedContentSuggestions",
	"CertificateTransparencyComponentUpdater",
}

// chromiumNames are the commands looked up on $PATH, in order.
var chromiumNames = []string{"chromium", "chromium-browser", "google-chrome"}

// findChromium returns $KEYMINT_CHROMIUM if set (it must exist), else the
// first of chromiumNames on $PATH.
func findChromium(getenv func(string) string, lookPath func(string) (string, error)) (string, error) {
	if p := getenv("KEYMINT_CHROMIUM"); p != "" {
		if _, err := lookPath(p); err != nil {
			return "", fmt.Errorf("browsertest: KEYMINT_CHROMIUM=%s is not an executable (%v); point it at a Chromium or unset it", p, err)
		}
		return p, nil
	}
	for _, name := range chromiumNames {
		if p, err := lookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("browsertest: no Chromium found (looked for $KEYMINT_CHROMIUM, then " +
		strings.Join(chromiumNames, ", ") + " on $PATH). These tests drive a real browser and are never skipped: " +
		"run ./scripts/test, which installs Debian's chromium when run as root, or `apt-get install chromium`, " +
		"or set KEYMINT_CHROMIUM to a Chromium or Chrome executable")
}
