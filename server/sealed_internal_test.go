package server

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSealerRoundTripAndRefusals(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	secret := []byte("a secret of the vault, 32 bytes!")
	flows, err := newSealer(secret, "flow", clock)
	if err != nil {
		t.Fatal(err)
	}
	sessions, _ := newSealer(secret, "session", clock)
	otherVault, _ := newSealer([]byte("another vault's secret, 32 bytes"), "flow", clock)

	type value struct{ ClientID, State string }
	in := value{"cl_1", "xyz"}
	sealed, err := flows.seal(in, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "cl_1") || strings.Contains(sealed, "xyz") {
		t.Fatalf("sealed value shows its content: %s", sealed)
	}
	var out value
	if err := flows.open(sealed, &out); err != nil || out != in {
		t.Fatalf("open = %+v, %v", out, err)
	}
	flipped := []byte(sealed)
	flipped[len(flipped)/2] ^= 1
	for name, tc := range map[string]struct {
		s      *sealer
		sealed string
	}{
		"other purpose": {sessions, sealed},
		"other vault":   {otherVault, sealed},
		"altered":       {flows, string(flipped)},
		"truncated":     {flows, sealed[:len(sealed)-3]},
		"empty":         {flows, ""},
		"not base64":    {flows, "!!!"},
		"oversized":     {flows, strings.Repeat("A", maxSealed+1)},
	} {
		if err := tc.s.open(tc.sealed, &out); !errors.Is(err, ErrSealed) {
			t.Errorf("%s: open = %v, want ErrSealed", name, err)
		}
	}
	now = now.Add(time.Minute)
	if err := flows.open(sealed, &out); !errors.Is(err, ErrSealed) {
		t.Errorf("expired: open = %v, want ErrSealed", err)
	}
}

func TestCSRFToken(t *testing.T) {
	key := deriveKey([]byte("secret"), "csrf")
	tok := csrfToken(key, "browser-1", "flow-1")
	if !checkCSRF(key, "browser-1", "flow-1", tok) {
		t.Fatal("the token of a form does not check")
	}
	for name, ok := range map[string]bool{
		"other browser": checkCSRF(key, "browser-2", "flow-1", tok),
		"other flow":    checkCSRF(key, "browser-1", "flow-2", tok),
		"no binding":    checkCSRF(key, "", "flow-1", csrfToken(key, "", "flow-1")),
		"no token":      checkCSRF(key, "browser-1", "flow-1", ""),
		"other key":     checkCSRF(deriveKey([]byte("secret"), "other"), "browser-1", "flow-1", tok),
	} {
		if ok {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzSealerOpen(f *testing.F) {
	s, _ := newSealer([]byte("secret"), "flow", time.Now)
	good, _ := s.seal(map[string]string{"a": "b"}, time.Hour)
	f.Add(good)
	f.Add("")
	f.Fuzz(func(t *testing.T, in string) {
		// Only values sealed under this key open, and they hold what was
		// sealed (the seed, sealed in whichever process runs it).
		var v map[string]string
		if err := s.open(in, &v); err == nil && (len(v) != 1 || v["a"] != "b") {
			t.Fatalf("opened %q as %v", in, v)
		}
	})
}
