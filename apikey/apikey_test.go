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

// TestKeyPrefix: the one rule for a vault's prefixes. A key prefix leaves
// room for ClientSecretMark, and a valid key prefix makes a valid client
// secret prefix.
func TestKeyPrefix(t *testing.T) {
	if ClientSecretPrefix(DefaultKeyPrefix) != "kmcs" {
		t.Errorf("ClientSecretPrefix(%q) = %q", DefaultKeyPrefix, ClientSecretPrefix(DefaultKeyPrefix))
	}
	for _, p := range []string{DefaultKeyPrefix, "a", "acme2026", "abcdefghijklmn"} {
		if err := ValidateKeyPrefix(p); err != nil {
			t.Errorf("ValidateKeyPrefix(%q) = %v", p, err)
		}
		if err := ValidatePrefix(ClientSecretPrefix(p)); err != nil {
			t.Errorf("client secret prefix of %q: %v", p, err)
		}
	}
	for _, p := range []string{"", "1a", "Km", "abcdefghijklmno", "abcdefghijklmnop"} {
		if err := ValidateKeyPrefix(p); !errors.Is(err, ErrPrefix) || !strings.Contains(err.Error(), KeyPrefixRule) {
			t.Errorf("ValidateKeyPrefix(%q) = %v, want ErrPrefix saying %q", p, err, KeyPrefixRule)
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
		if sum := checksum(s[:len(s)-ChecksumLen]); string(sum[:]) != s[len(s)-ChecksumLen:] {
			t.Fatalf("accepted bad checksum %q", s)
		}
	})
}

// Fake secrets for the masking tests: the shape of a secret, with a valid
// checksum, and nothing real behind them.
const (
	fakeKey          = "km_Fak3SecretF1xtureF0rMaskingTestsN0tReal01231XuaeJ"
	fakeClientSecret = "kmcs_Fak3SecretF1xtureF0rMaskingTestsN0tReal01231hNhBQ"
	fakeJWT          = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImZha2UifQ.eyJzdWIiOiJmYWtlIiwiZXhwIjo0MTAyNDQ0ODAwfQ.RmFrZVNpZ25hdHVyZUZvck1hc2tpbmdUZXN0c05vdFJlYWw"
)

func TestFakeSecretsParse(t *testing.T) {
	for _, s := range []string{fakeKey, fakeClientSecret} {
		if _, err := Parse(s); err != nil {
			t.Errorf("Parse(%q) = %v: the fixture should be well formed", s, err)
		}
	}
}

func TestMask(t *testing.T) {
	random := fakeKey[len("km_"):]
	typo := "km_Fak3SecretF1xtureF0rMaskingTestsN0tReal01231XuaeK" // checksum wrong
	tests := []struct{ in, want string }{
		{"", ""},
		{"nothing secret here", "nothing secret here"},
		{fakeKey, "km_****"},
		{fakeClientSecret, "kmcs_****"},
		{`key verify takes no arguments, got "` + fakeKey + `"`, `key verify takes no arguments, got "km_****"`},
		{typo, "km_****"},
		{"acme2026_" + random, "acme2026_****"},                 // any vault's prefix
		{"abcdefghijklmnop_" + random, "abcdefghijklmnop_****"}, // the longest prefix
		{"KM_" + random, "KM_****"},                             // typed in capitals
		{"x" + fakeKey, "xkm_****"},                             // the prefix is not secret
		{"km_" + random[:RandomLen], "km_****"},                 // cut by its whole checksum
		{fakeKey + "extra", "km_****"},                          // characters added
		{fakeKey + fakeKey, "km_****"},                          // two glued together
		{fakeKey + "_" + random, "km_****"},
		{fakeKey + "-" + random, "km_****"},
		{"/tmp/" + fakeKey + ".db: no vault", "/tmp/km_****: no vault"},
		{fakeKey + ", " + fakeClientSecret, "km_****, kmcs_****"},
		{"--vault=" + fakeKey, "--vault=km_****"},
		{"a " + fakeKey + ".", "a km_****."}, // the sentence's full stop stays
		{fakeJWT, "eyJ****"},
		{"Bearer " + fakeJWT, "Bearer eyJ****"},
		{`got "` + fakeJWT + `"`, `got "eyJ****"`},
		{"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "eyJ****."},                           // unsecured: no signature
		{"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0"}, // one dot: not a JWT
		{"eyJhbGciOiJIUzI1NiJ9", "eyJhbGciOiJIUzI1NiJ9"},                               // a header alone says nothing
		{"eyJ.a.b", "eyJ.a.b"},                                                         // too short to be a header
		{"eyJhbGciOi.e30.x" + fakeKey, "eyJ****"},
		{"km_" + fakeJWT, "km_eyJ****"},

		// Not secrets: ids, key ids, hashes and their neighbours stay readable.
		{"key key_0123456789abcdef not found", "key key_0123456789abcdef not found"},
		{"client cl_0123456789abcdefABCDEF", "client cl_0123456789abcdefABCDEF"},
		{"kid Xq_1f3c5e7a9b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0a", "kid Xq_1f3c5e7a9b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0a"},
		{"ci_3f2a9c0d1e4b5a6978695a4b3c2d1e0f9a8b7c6d", "ci_3f2a9c0d1e4b5a6978695a4b3c2d1e0f9a8b7c6d"}, // a SHA-1
		{"km_" + random[:RandomLen-1], "km_" + random[:RandomLen-1]},                                   // too short to be a secret
		{"_" + random, "_" + random}, // no prefix
		{"1km" + "_" + random, "1km_****"},
		{"abcdefghijklmnopq_" + random, "abcdefghijklmnopq_****"}, // a prefix too long: its last 16 characters are one
		{"vault 0123456789abcdef0123456789abcdef", "vault 0123456789abcdef0123456789abcdef"},
	}
	for _, tt := range tests {
		if got := Mask(tt.in); got != tt.want {
			t.Errorf("Mask(%q)\n = %q\nwant %q", tt.in, got, tt.want)
		}
		if got := Mask(tt.want); got != tt.want {
			t.Errorf("Mask(%q) = %q: masking twice changed it", tt.want, got)
		}
	}
}

// TestMaskGenerated masks real generated secrets, of every prefix length,
// anywhere in a message.
func TestMaskGenerated(t *testing.T) {
	for _, prefix := range []string{"a", "km", "kmcs", "abcdefghijklmnop"} {
		for range 200 {
			s, err := Generate(prefix)
			if err != nil {
				t.Fatal(err)
			}
			for _, msg := range []string{s, `got "` + s + `"`, s + ": no such key", "x" + s + "y"} {
				out := Mask(msg)
				if strings.Contains(out, s[len(prefix)+1:len(prefix)+1+20]) || !strings.Contains(out, prefix+"_"+masked) {
					t.Fatalf("Mask(%q) = %q", msg, out)
				}
			}
		}
	}
}

func FuzzMask(f *testing.F) {
	for _, s := range []string{
		"", fakeKey, fakeClientSecret, fakeJWT, "Bearer " + fakeJWT, fakeKey + fakeKey,
		`got "` + fakeKey + `"`, "eyJhbGciOiJub25lIn0.eyJ9.", "key_0123456789abcdef",
		"abcdefghijklmnopq_" + fakeKey[3:], "eyJeyJeyJeyJeyJ.eyJ", "a_b_c_" + fakeKey,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := Mask(s)
		spans := FindSecrets(s)
		if len(spans) == 0 {
			if out != s {
				t.Fatalf("Mask(%q) = %q, with nothing to mask", s, out)
			}
			return
		}
		// What the output may show of the input: the text between spans,
		// with the kept start of the span that follows (a prefix and '_',
		// or "eyJ").
		var shown []string
		last := 0
		for _, sp := range spans {
			if sp[0] < last || sp[1] <= sp[0] || sp[1] > len(s) {
				t.Fatalf("FindSecrets(%q) = %v: spans out of order or bounds", s, spans)
			}
			keep := len(jwtStart)
			if !strings.HasPrefix(s[sp[0]:], jwtStart) {
				keep = strings.IndexByte(s[sp[0]:sp[1]], '_') + 1
				if keep == 0 {
					t.Fatalf("FindSecrets(%q): span %q has no '_'", s, s[sp[0]:sp[1]])
				}
			}
			shown = append(shown, s[last:sp[0]+keep])
			last = sp[1]
		}
		shown = append(shown, s[last:])
		for _, sp := range spans {
			secret := s[sp[0]:sp[1]]
			for i := 0; i+20 <= len(secret); i++ {
				g := secret[i : i+20]
				if !strings.Contains(out, g) {
					continue
				}
				found := false
				for _, part := range shown {
					found = found || strings.Contains(part, g)
				}
				if !found {
					t.Fatalf("Mask(%q) = %q shows %q of %q", s, out, g, secret)
				}
			}
		}
		if again := FindSecrets(out); len(again) != 0 {
			t.Fatalf("Mask(%q) = %q, in which FindSecrets finds %v", s, out, again)
		}
	})
}
