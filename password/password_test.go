package password_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/keymint/keymint/password"
)

// fast are cheap parameters for tests that are not about cost.
var fast = password.Params{Memory: 64, Time: 1, Threads: 1}

func TestHashVerify(t *testing.T) {
	h, err := password.Hash("correct horse battery", fast)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") || strings.Contains(h, "horse") {
		t.Fatalf("hash %q", h)
	}
	if err := password.Verify(h, "correct horse battery"); err != nil {
		t.Errorf("right password: %v", err)
	}
	for _, wrong := range []string{"correct horse batter", "Correct horse battery", "", strings.Repeat("x", password.MaxLength+1)} {
		if err := password.Verify(h, wrong); !errors.Is(err, password.ErrMismatch) {
			t.Errorf("Verify(%q) = %v, want ErrMismatch", wrong, err)
		}
	}
	h2, _ := password.Hash("correct horse battery", fast)
	if h2 == h {
		t.Error("two hashes of one password are equal: no salt")
	}
}

func TestCheck(t *testing.T) {
	for pw, want := range map[string]error{
		"12345678":                nil,
		"žluťoučký":               nil, // 9 characters, more bytes
		"1234567":                 password.ErrTooShort,
		"žluťouč":                 password.ErrTooShort, // 7 characters, 11 bytes
		strings.Repeat("a", 1025): password.ErrTooLong,
		"abcdefgh\xff":            password.ErrNotUTF8,
	} {
		if err := password.Check(pw); !errors.Is(err, want) {
			t.Errorf("Check(%q) = %v, want %v", pw, err, want)
		}
	}
}

func TestVerifyRefusesBadHashes(t *testing.T) {
	good, _ := password.Hash("password123", fast)
	parts := strings.Split(good, "$")
	for name, h := range map[string]string{
		"empty":         "",
		"bcrypt":        "$2y$10$abcdefghijklmnopqrstuuVKqGZ7nnLZ4OzJ0xrH8cZzOx3dE5Y9m",
		"argon2i":       strings.Replace(good, "argon2id", "argon2i", 1),
		"other version": strings.Replace(good, "v=19", "v=16", 1),
		"zero memory":   strings.Replace(good, "m=64", "m=0", 1),
		"huge memory":   strings.Replace(good, "m=64", "m=99999999", 1),
		"many passes":   strings.Replace(good, "t=1", "t=1000", 1),
		"unknown param": strings.Replace(good, "p=1", "x=1", 1),
		"bad salt":      strings.Join(append(parts[:4:4], "!!", parts[5]), "$"),
		"short key":     strings.Join(append(parts[:5:5], "AAAA"), "$"),
		"extra part":    good + "$x",
		"a password":    "password123",
	} {
		if err := password.Verify(h, "password123"); !errors.Is(err, password.ErrBadHash) {
			t.Errorf("%s: Verify = %v, want ErrBadHash", name, err)
		}
	}
}

func TestNeedsRehash(t *testing.T) {
	h, _ := password.Hash("password123", fast)
	if password.NeedsRehash(h, fast) {
		t.Error("same parameters need a rehash")
	}
	if !password.NeedsRehash(h, password.Default) {
		t.Error("other parameters need none")
	}
	if err := password.Verify(password.Dummy(fast), "anything at all"); !errors.Is(err, password.ErrMismatch) {
		t.Errorf("Dummy verifies: %v", err)
	}
}

func FuzzVerify(f *testing.F) {
	good, _ := password.Hash("password123", fast)
	f.Add(good, "password123")
	f.Add("$argon2id$v=19$m=1,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA", "x")
	f.Fuzz(func(t *testing.T, phc, pw string) {
		if strings.Contains(phc, "m=") && !strings.Contains(phc, "m=64,") {
			return // keep the fuzzer from asking for costly parameters
		}
		_ = password.Verify(phc, pw)
	})
}

func BenchmarkVerifyDefault(b *testing.B) {
	h, _ := password.Hash("password123", password.Default)
	for b.Loop() {
		_ = password.Verify(h, "password123")
	}
}
