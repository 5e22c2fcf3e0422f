package browsertest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/chromedp/chromedp"
)

// Navigate loads url in the tab, waits for its load event, and returns the
// HTTP status of the document (after any redirects).
func (b *Browser) Navigate(url string) (status int) {
	b.t.Helper()
	resp := run(b, "navigate to "+url, chromedp.NavigateResponse(url))
	if resp == nil {
		return 0
	}
	return int(resp.Status)
}

// Fill types text into the visible form field that the CSS selector
// matches, replacing what it held, as a person would, key by key.
func (b *Browser) Fill(selector, text string) {
	b.t.Helper()
	sel := chromedp.CSS(selector)
	quoted, _ := json.Marshal(selector)
	b.do("fill "+selector,
		chromedp.WaitVisible(sel),
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%s).value = ""`, quoted)),
		chromedp.SendKeys(sel, text, chromedp.NodeVisible))
	if got := run(b, "read "+selector, chromedp.Value(sel)); got != text {
		b.fail("fill "+selector, fmt.Errorf("the field holds %q after typing %q", got, text))
	}
}

// Click clicks the visible element that the CSS selector matches (taps it
// on a Phone), waits until the page it leads to has loaded, following any
// redirects, and returns that document's HTTP status. The click must lead
// to a navigation, such as a link or a form's submit button.
func (b *Browser) Click(selector string) (status int) {
	b.t.Helper()
	press := chromedp.Click(chromedp.CSS(selector), chromedp.NodeVisible)
	if b.phone {
		press = chromedp.Tap(chromedp.CSS(selector), chromedp.NodeVisible)
	}
	ctx, cancel := b.actionContext()
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, press)
	if err != nil {
		b.fail("click "+selector+" and wait for the next page", err)
	}
	if resp == nil {
		return 0
	}
	return int(resp.Status)
}

// Text returns the rendered text (innerText) of the element that the CSS
// selector matches, waiting for it to be in the page.
func (b *Browser) Text(selector string) string {
	b.t.Helper()
	return run(b, "read the text of "+selector, chromedp.Text(chromedp.CSS(selector)))
}

// CurrentURL returns the tab's URL.
func (b *Browser) CurrentURL() string {
	b.t.Helper()
	return run(b, "read the URL", chromedp.Location())
}

// Screenshot writes a PNG of the whole page, beyond the viewport, to path.
func (b *Browser) Screenshot(path string) {
	b.t.Helper()
	png := run(b, "take a screenshot", chromedp.FullScreenshot(100)) // 100: PNG
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatalf("browsertest: write the screenshot: %v", err)
	}
}

// Eval evaluates a JavaScript expression in the page and decodes its JSON
// value into a T, for what the other methods do not ask, such as whether
// the page is wider than a phone's screen:
//
//	wide := browsertest.Eval[bool](b, `document.documentElement.scrollWidth > innerWidth`)
func Eval[T any](b *Browser, expression string) T {
	b.t.Helper()
	return run(b, "evaluate "+expression, chromedp.Evaluate[T](expression))
}

// run runs one action within the action timeout, failing the test with
// what it was doing if it does not succeed.
func run[T any](b *Browser, doing string, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := b.actionContext()
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.fail(doing, err)
	}
	return v
}

// do runs actions that return nothing, as run does.
func (b *Browser) do(doing string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	run(b, doing, chromedp.Steps(steps...))
}

func (b *Browser) actionContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(b.tab, b.actionTimeout)
}

// fail ends the test with the step that failed, why, and where the browser
// was: its URL and the start of the page's text.
func (b *Browser) fail(doing string, err error) {
	b.t.Helper()
	var why string
	switch {
	case b.session.Err() != nil:
		why = fmt.Sprintf(" (the browser session's time, %s, is up: browsertest.Timeout sets it)", b.timeout)
	case b.tab.Err() == nil && strings.Contains(err.Error(), context.DeadlineExceeded.Error()):
		why = fmt.Sprintf(" (not within %s: browsertest.ActionTimeout sets it)", b.actionTimeout)
	}
	b.t.Fatalf("browsertest: %s: %v%s%s", doing, err, why, b.where())
}

// where describes the page, if the browser still answers.
func (b *Browser) where() string {
	if b.tab.Err() != nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(b.tab, 2*time.Second)
	defer cancel()
	url, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return ""
	}
	text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	return fmt.Sprintf("\npage %s:\n%s", url, tail(text, 2000))
}
