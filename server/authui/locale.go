package authui

import (
	"net/http"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/text/feature/plural"
	"golang.org/x/text/language"
)

// Locale is one of the languages the pages are written in. The zero value is
// English, the default.
type Locale uint8

// The supported locales.
const (
	English Locale = iota
	Czech
	Slovak
	Russian
	French
	numLocales
)

// Limits on untrusted language input: only the first bytes and entries count.
const (
	maxLanguageInput = 1024 // bytes of Accept-Language or ui_locales read
	maxLanguageItems = 16   // entries of either list considered
)

// String returns the locale's BCP 47 tag ("en", "cs", "sk", "ru", "fr"), as
// written in <html lang> and Content-Language. An unknown Locale is English.
func (l Locale) String() string {
	if l >= numLocales {
		l = English
	}
	return "encsskrufr"[2*l : 2*l+2]
}

// Tag returns the locale's language tag.
func (l Locale) Tag() language.Tag { return language.Make(l.String()) }

// valid maps an out-of-range Locale to English.
func (l Locale) valid() Locale {
	if l >= numLocales {
		return English
	}
	return l
}

// newMatcher matches against the supported locales in Locale order, so a
// match's index is its Locale; English, first, is the default.
func newMatcher() language.Matcher {
	tags := make([]language.Tag, numLocales)
	for l := range numLocales {
		tags[l] = l.Tag()
	}
	return language.NewMatcher(tags)
}

// Lang chooses the language of a page: the first supported tag of uiLocales
// (the OIDC ui_locales parameter, a space-separated list in order of
// preference; empty when the client sent none), else the request's
// Accept-Language, else English.
func (r *Renderer) Lang(req *http.Request, uiLocales string) Locale {
	return r.Negotiate(req.Header.Get("Accept-Language"), uiLocales)
}

// Negotiate is [Renderer.Lang] on the header's value: uiLocales wins when one
// of its tags is supported; otherwise acceptLanguage is matched, q-values
// respected (q=0 excludes a language). Both are untrusted and may be
// malformed: bad entries are skipped, never an error.
func (r *Renderer) Negotiate(acceptLanguage, uiLocales string) Locale {
	if l, ok := r.matchUILocales(uiLocales); ok {
		return l
	}
	return r.matchAccept(acceptLanguage)
}

// matchUILocales returns the locale of the first tag in the list that is one
// of ours: a regional variant counts (fr-CA is French), a language the
// matcher merely deems understood does not (kk would give Russian), since the
// client listed its choices explicitly and a later one may be supported.
func (r *Renderer) matchUILocales(list string) (Locale, bool) {
	list = truncate(list, ' ')
	for i, field := range strings.Fields(list) {
		if i == maxLanguageItems {
			break
		}
		tag, err := language.Parse(field)
		if err != nil {
			continue
		}
		_, idx, conf := r.matcher.Match(tag)
		if conf < language.High || idx < 0 || idx >= int(numLocales) {
			continue
		}
		want, _ := r.tags[idx].Base()
		if got, _ := tag.Base(); got == want {
			return Locale(idx), true
		}
	}
	return English, false
}

// matchAccept parses an Accept-Language value entry by entry, so that one
// malformed entry costs only itself (language.ParseAcceptLanguage rejects the
// whole header for it), orders the entries by q-value, stably, and matches
// them. A match the matcher is not confident of (No) gives English.
func (r *Renderer) matchAccept(header string) Locale {
	header = truncate(header, ',')
	type entry struct {
		tag language.Tag
		q   float32
	}
	var entries []entry
	for i, item := range strings.Split(header, ",") {
		if i == maxLanguageItems {
			break
		}
		tags, qs, err := language.ParseAcceptLanguage(item)
		if err != nil {
			continue
		}
		for j := range tags {
			entries = append(entries, entry{tags[j], qs[j]})
		}
	}
	if len(entries) == 0 {
		return English
	}
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].q > entries[j].q })
	tags := make([]language.Tag, len(entries))
	for i, e := range entries {
		tags[i] = e.tag
	}
	_, idx, conf := r.matcher.Match(tags...)
	if conf < language.High || idx < 0 || idx >= int(numLocales) {
		return English
	}
	return Locale(idx)
}

// truncate cuts s to maxLanguageInput bytes, at the last separator before the
// limit, so that no entry is cut in half.
func truncate(s string, sep byte) string {
	if len(s) <= maxLanguageInput {
		return s
	}
	s = s[:maxLanguageInput]
	if i := strings.LastIndexByte(s, sep); i >= 0 {
		return s[:i]
	}
	return ""
}

// pluralForm returns the CLDR cardinal plural form of the integer n (n >= 0)
// in the locale's language: for Russian 1 → One, 2 → Few, 5 → Many.
func pluralForm(tag language.Tag, n int) plural.Form {
	if n < 0 {
		return plural.Other
	}
	// The rules read n modulo 10^7 at most; larger values are allowed so.
	return plural.Cardinal.MatchPlural(tag, n%10_000_000, 0, 0, 0, 0)
}

// formatCount writes n for a message. Plain digits: a count of seconds stays
// small, and "1 000" vs "1,000" would only matter beyond that.
func formatCount(n int) string { return strconv.Itoa(n) }
