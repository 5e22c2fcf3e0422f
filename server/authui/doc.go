// Package authui renders the pages a person sees during the OAuth 2.0
// authorization-code flow at /authorize: sign-in (and its development
// variant for `keymint serve --dev`), consent, and an error page.
//
// The package decides nothing about users, clients or grants: the caller
// authenticates, checks the CSRF token, remembers the flow and chooses the
// status code; authui only writes the HTML and the security headers that go
// with it. Every page is a self-contained html/template document embedded in
// the binary: one inline stylesheet (allowed by its SHA-256 hash in the
// Content-Security-Policy), one inline SVG, no script, no external asset.
//
// Pages are translated into English, Czech, Slovak, Russian and French. The
// strings live in one catalog (catalog.go); [Renderer.Lang] picks the
// language from an OIDC ui_locales value and the Accept-Language header.
//
// Forms post the fields named by the Field* constants, so the handler that
// reads them and the page that writes them cannot disagree.
package authui
