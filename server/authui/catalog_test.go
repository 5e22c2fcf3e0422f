package authui

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"golang.org/x/text/feature/plural"
)

var placeholderRE = regexp.MustCompile(`\{[a-z]+\}`)

func placeholders(s string) []string {
	p := placeholderRE.FindAllString(s, -1)
	slices.Sort(p)
	return p
}

// TestCatalogComplete: every key of every language is in all five, none is
// empty, each has the placeholders English has, and no stray braces.
func TestCatalogComplete(t *testing.T) {
	cat := catalog()
	en := cat[English]
	for l := range numLocales {
		m := cat[l]
		for key, want := range en.text {
			got, ok := m.text[key]
			switch {
			case !ok:
				t.Errorf("%v: missing %q", l, key)
			case strings.TrimSpace(got) == "":
				t.Errorf("%v: %q is empty", l, key)
			case !slices.Equal(placeholders(got), placeholders(want)):
				t.Errorf("%v: %q has placeholders %v, English %v", l, key, placeholders(got), placeholders(want))
			case strings.Count(got, "{") != len(placeholders(got)) || strings.Count(got, "}") != len(placeholders(got)):
				t.Errorf("%v: %q has a stray brace: %q", l, key, got)
			}
		}
		for key := range m.text {
			if _, ok := en.text[key]; !ok {
				t.Errorf("%v: %q is not in English", l, key)
			}
		}
		for key := range en.plurals {
			if _, ok := m.plurals[key]; !ok {
				t.Errorf("%v: missing plural %q", l, key)
			}
		}
		for key := range m.plurals {
			if _, ok := en.plurals[key]; !ok {
				t.Errorf("%v: plural %q is not in English", l, key)
			}
		}
	}
}

// TestCatalogPluralForms: each plural message has exactly the forms the
// language's integers use (per golang.org/x/text/feature/plural), plus the
// forms only fractions use where the language has them (cs, sk, ru), and
// Other; each with the {n} placeholder.
func TestCatalogPluralForms(t *testing.T) {
	r := newRenderer(t)
	fractionForms := map[Locale][]plural.Form{Czech: {plural.Many}, Slovak: {plural.Many}, Russian: {plural.Other}}
	for l := range numLocales {
		want := map[plural.Form]bool{plural.Other: true}
		for n := range 100_000 {
			want[pluralForm(r.tags[l], n)] = true
		}
		for _, f := range fractionForms[l] {
			want[f] = true
		}
		for key, forms := range r.msgs[l].plurals {
			for f := range want {
				if s := forms[f]; strings.TrimSpace(s) == "" {
					t.Errorf("%v: %q has no form %v", l, key, f)
				} else if strings.Count(s, "{n}") != 1 || len(placeholders(s)) != 1 {
					t.Errorf("%v: %q form %v must have one {n}: %q", l, key, f, s)
				}
			}
			for f := range forms {
				if !want[f] {
					t.Errorf("%v: %q has form %v, which the language does not use", l, key, f)
				}
			}
		}
	}
}

// TestTranslationsDiffer guards against a language pasted over another: the
// catalogs share few strings (proper names and the like only).
func TestTranslationsDiffer(t *testing.T) {
	cat := catalog()
	for a := range numLocales {
		for b := a + 1; b < numLocales; b++ {
			same := 0
			for key, s := range cat[a].text {
				if cat[b].text[key] == s {
					same++
				}
			}
			// cs and sk legitimately share a few ("Heslo", "Chyba", ...).
			if same > 5 {
				t.Errorf("%v and %v share %d of %d strings", a, b, same, len(cat[a].text))
			}
		}
	}
}
