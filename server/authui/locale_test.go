package authui

import (
	"net/http/httptest"
	"strings"
	"testing"

	"golang.org/x/text/feature/plural"
)

func newRenderer(t testing.TB) *Renderer {
	t.Helper()
	r, err := New()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestNegotiate(t *testing.T) {
	r := newRenderer(t)
	for _, tc := range []struct {
		accept, ui string
		want       Locale
	}{
		{"", "", English},
		{"en-US,en;q=0.9", "", English},
		{"cs-CZ", "", Czech},
		{"cs-CZ,cs;q=0.9,en;q=0.8", "", Czech},
		{"sk", "", Slovak},
		{"sk-SK,sk;q=0.9,cs;q=0.8,en;q=0.7", "", Slovak},
		{"ru-RU,ru;q=0.9", "", Russian},
		{"ru-UA", "", Russian},
		{"fr-CA,fr;q=0.9", "", French},
		{"fr-CH", "", French},
		{"CS-cz", "", Czech}, // case does not matter

		// q-values: order by weight, not position; q=0 excludes.
		{"en;q=0.5, ru;q=0.9", "", Russian},
		{"sk;q=0.8, cs;q=0.9", "", Czech},
		{"cs;q=0, fr", "", French},
		{"fr;q=0.1, de, cs;q=0.5", "", Czech},
		{"cs;q=0", "", English},
		{"de-DE,de;q=0.9", "", English},
		{"de, fr;q=0.5", "", French},
		{"uk", "", English}, // not Russian by default
		{"uk, ru;q=0.8", "", Russian},
		{"zh-Hant-TW", "", English},
		{"*", "", English},
		{"*, cs;q=0.5", "", Czech},

		// Malformed entries cost only themselves.
		{"garbage;;;", "", English},
		{"cs;q=abc, fr;q=0.5", "", French},
		{"!!, sk", "", Slovak},
		{";q=1, ru", "", Russian},
		{",,,,", "", English},
		{strings.Repeat("x-", 600) + "cs", "", English},
		{strings.Repeat("de,", 400) + "cs", "", English}, // past the entry limit

		// ui_locales wins when one of its tags is supported; first wins.
		{"cs", "fr", French},
		{"cs", "de fr-CA", French},
		{"cs", "sk cs", Slovak},
		{"cs", "  ru  ", Russian},
		{"cs", "de", Czech},      // nothing supported: Accept-Language decides
		{"cs", "kk fr", French},  // kk is not Russian when listed explicitly
		{"cs", "bad!tag", Czech}, // malformed
		{"ru", "", Russian},
		{"", "en-GB", English},
		{"fr", "EN", English},
		{"", "ces", Czech}, // ISO 639-2 code
		{"", strings.Repeat("de ", 20) + "fr", English},
	} {
		if got := r.Negotiate(tc.accept, tc.ui); got != tc.want {
			name := tc.accept
			if len(name) > 40 {
				name = name[:40] + "…"
			}
			t.Errorf("Negotiate(%q, %q) = %v, want %v", name, tc.ui, got, tc.want)
		}
	}
}

func TestLang(t *testing.T) {
	r := newRenderer(t)
	req := httptest.NewRequest("GET", "/authorize", nil)
	if got := r.Lang(req, ""); got != English {
		t.Errorf("no header: %v", got)
	}
	req.Header.Set("Accept-Language", "sk-SK, en;q=0.5")
	if got := r.Lang(req, ""); got != Slovak {
		t.Errorf("sk-SK: %v", got)
	}
	if got := r.Lang(req, "ru"); got != Russian {
		t.Errorf("ui_locales ru: %v", got)
	}
}

func TestLocaleString(t *testing.T) {
	for l, want := range map[Locale]string{English: "en", Czech: "cs", Slovak: "sk", Russian: "ru", French: "fr", Locale(200): "en"} {
		if got := l.String(); got != want {
			t.Errorf("Locale(%d).String() = %q, want %q", l, got, want)
		}
		if got := l.Tag().String(); got != want {
			t.Errorf("Locale(%d).Tag() = %q, want %q", l, got, want)
		}
	}
}

// TestPlural checks the throttle message, which counts seconds, in the five
// languages: Czech and Slovak have one/few/other for integers, Russian
// one/few/many by the last digits.
func TestPlural(t *testing.T) {
	r := newRenderer(t)
	nb := "\u00a0"
	for _, tc := range []struct {
		loc  Locale
		want map[int]string
	}{
		{English, map[int]string{0: "0 seconds", 1: "1 second.", 2: "2 seconds", 5: "5 seconds", 21: "21 seconds", 22: "22 seconds", 25: "25 seconds"}},
		{Czech, map[int]string{0: "0 sekund", 1: "za 1 sekundu", 2: "2 sekundy", 3: "3 sekundy", 4: "4 sekundy", 5: "5 sekund", 11: "11 sekund", 21: "21 sekund", 22: "22 sekund", 25: "25 sekund", 101: "101 sekund"}},
		{Slovak, map[int]string{0: "0 sekúnd", 1: "o 1 sekundu", 2: "2 sekundy", 4: "4 sekundy", 5: "5 sekúnd", 21: "21 sekúnd", 22: "22 sekúnd", 25: "25 sekúnd"}},
		{Russian, map[int]string{0: "0 секунд", 1: "через 1 секунду", 2: "2 секунды", 4: "4 секунды", 5: "5 секунд", 11: "11 секунд", 12: "12 секунд", 14: "14 секунд", 21: "21 секунду", 22: "22 секунды", 25: "25 секунд", 101: "101 секунду", 111: "111 секунд", 1002: "1002 секунды"}},
		{French, map[int]string{0: "0" + nb + "seconde.", 1: "1" + nb + "seconde.", 2: "2" + nb + "secondes", 5: "5" + nb + "secondes", 21: "21" + nb + "secondes", 22: "22" + nb + "secondes", 25: "25" + nb + "secondes"}},
	} {
		for n, want := range tc.want {
			if got := r.plural(tc.loc, "signin.throttled", n); !strings.Contains(got, want) {
				t.Errorf("%v, %d: %q does not contain %q", tc.loc, n, got, want)
			}
		}
	}
}

func TestPluralForm(t *testing.T) {
	r := newRenderer(t)
	for _, tc := range []struct {
		loc  Locale
		n    int
		want plural.Form
	}{
		{English, 1, plural.One}, {English, 2, plural.Other}, {English, 21, plural.Other},
		{Czech, 1, plural.One}, {Czech, 2, plural.Few}, {Czech, 5, plural.Other}, {Czech, 22, plural.Other},
		{Slovak, 1, plural.One}, {Slovak, 4, plural.Few}, {Slovak, 25, plural.Other},
		{Russian, 1, plural.One}, {Russian, 21, plural.One}, {Russian, 22, plural.Few}, {Russian, 25, plural.Many}, {Russian, 11, plural.Many}, {Russian, 12, plural.Many},
		{French, 0, plural.One}, {French, 1, plural.One}, {French, 2, plural.Other},
		{Russian, -1, plural.Other},
		{Russian, 1_000_000_000_021, plural.One}, // large: read modulo 10^7
	} {
		if got := pluralForm(r.tags[tc.loc], tc.n); got != tc.want {
			t.Errorf("%v, %d: form %v, want %v", tc.loc, tc.n, got, tc.want)
		}
	}
}

// FuzzNegotiate feeds untrusted Accept-Language and ui_locales values to the
// negotiation: it must never panic and always give a supported locale.
func FuzzNegotiate(f *testing.F) {
	for _, seed := range [][2]string{
		{"", ""},
		{"cs-CZ,cs;q=0.9,en;q=0.8", ""},
		{"fr;q=0.1, de, cs;q=0.5", "de fr-CA"},
		{"*;q=0.5, x-private;q=0.1", "i-klingon"},
		{"en-u-ca-gregory-nu-latn;q=1.0", "sk-x-foo-bar"},
		{"zh-Hant-TW-u-co-pinyin", "und"},
		{";;;,,,q=,", "\x00\xff"},
		{"cs;q=0.0000001, ru;q=1e-3", "ru-Cyrl-RU-petr1708"},
		{strings.Repeat("a-", 999), strings.Repeat("b ", 999)},
	} {
		f.Add(seed[0], seed[1])
	}
	r := newRenderer(f)
	f.Fuzz(func(t *testing.T, accept, ui string) {
		got := r.Negotiate(accept, ui)
		if got >= numLocales {
			t.Fatalf("Negotiate(%q, %q) = %d", accept, ui, got)
		}
		if again := r.Negotiate(accept, ui); again != got {
			t.Fatalf("Negotiate(%q, %q) not deterministic: %v then %v", accept, ui, got, again)
		}
	})
}
