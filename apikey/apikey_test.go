package apikey

import (
	"errors"
	"strings"
	"testing"
)

func TestGenerateParse(t *testing.T) {
	for _, prefix := range []string{"km", "kmcs", "a", "acme2026"} {
		s, err := Generate(prefix)
		if err != nil {
			t.Fatalf("Generate(%q): %v", prefix, err)
		}
		if want := len(prefix) + 1 + RandomLen + ChecksumLen; len(s) != want {
			t.Errorf("len(%q) = %d, want %d", s, len(s), want)
		}
		got, err := Parse(s)
		if err != nil || got != prefix {
			t.Errorf("Parse(%q) = %q, %v; want %q", s, got, err, prefix)
		}
	}
}

func TestGenerateUnique(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		s, err := Generate("km")
		if err != nil {
			t.Fatal(err)
		}
		if seen[s] {
			t.Fatalf("duplicate secret after %d", len(seen))
		}
		seen[s] = true
	}
}

func TestParseRejects(t *testing.T) {
	good, err := Generate("km")
	if err != nil {
		t.Fatal(err)
	}
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	tests := []struct {
		name, in string
		want     error
	}{
		{"empty", "", ErrMalformed},
		{"no underscore", strings.ReplaceAll(good, "_", ""), ErrMalformed},
		{"truncated", good[:len(good)-1], ErrMalformed},
		{"extra char", good + "a", ErrMalformed},
		{"bad prefix", "KM" + good[2:], ErrMalformed},
		{"non-base62", good[:10] + "-" + good[11:], ErrMalformed},
		{"typo in random part", flip(good, 5), ErrChecksum},
		{"typo in checksum", flip(good, len(good)-1), ErrChecksum},
		{"swapped prefix", "kx" + good[2:], ErrChecksum},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Parse(tt.in); !errors.Is(err, tt.want) {
				t.Errorf("Parse = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestValidatePrefix(t *testing.T) {
	for _, p := range []string{"km", "a1", "abcdefghijklmnop"} {
		if err := ValidatePrefix(p); err != nil {
			t.Errorf("ValidatePrefix(%q) = %v", p, err)
		}
	}
	for _, p := range []string{"", "1a", "k_m", "Km", "abcdefghijklmnopq", "k-m"} {
		if err := ValidatePrefix(p); !errors.Is(err, ErrPrefix) {
			t.Errorf("ValidatePrefix(%q) = %v, want ErrPrefix", p, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	good, _ := Generate("km")
	f.Add(good)
	f.Add("km_")
	f.Add("_" + strings.Repeat("a", 49))
	f.Add(good[:len(good)-2])
	f.Fuzz(func(t *testing.T, s string) {
		prefix, err := Parse(s)
		if err != nil {
			return
		}
		// Anything accepted must have the exact shape and a correct checksum.
		if !strings.HasPrefix(s, prefix+"_") || len(s) != len(prefix)+1+RandomLen+ChecksumLen {
			t.Fatalf("accepted malformed %q", s)
		}
		if checksum(s[:len(s)-ChecksumLen]) != s[len(s)-ChecksumLen:] {
			t.Fatalf("accepted bad checksum %q", s)
		}
	})
}
