package browsertest

import (
	"context"
	"strings"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// Language makes the browser one whose user prefers the languages tags
// (BCP 47, such as "cs" or "fr-CA"), in that order: every request the tab
// makes sends them as Accept-Language, with the q-values Chromium adds
// ("cs,en;q=0.9" for Language("cs", "en")), navigator.languages reports
// them, and Chromium's own locale is the first (--lang). It is for testing
// that a page speaks the user's language.
func Language(tags ...string) Option {
	return func(c *config) { c.language = strings.Join(tags, ",") }
}

// firstLanguage is the first tag of a comma-separated list.
func firstLanguage(list string) string {
	first, _, _ := strings.Cut(list, ",")
	return strings.TrimSpace(first)
}

// acceptLanguage overrides the tab's Accept-Language header and
// navigator.languages with the comma-separated tags of list, keeping its
// user agent.
func acceptLanguage(list string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		ua, err := chromedp.Evaluate[string]("navigator.userAgent")(ctx, t)
		if err != nil {
			return err
		}
		_, err = cdp.Call(ctx, t, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{UserAgent: ua, AcceptLanguage: list})
		return err
	})
}
