package main

import (
	"bytes"
	"strings"
	"testing"
)

// Fakes with the shape of keymint's secrets (valid checksums) and of a JWT.
const (
	fakeKeySecret    = "km_Fak3SecretF1xtureF0rMaskingTestsN0tReal01231XuaeJ"
	fakeClientSecret = "kmcs_Fak3SecretF1xtureF0rMaskingTestsN0tReal01231hNhBQ"
	fakeJWT          = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImZha2UifQ.eyJzdWIiOiJmYWtlIiwiZXhwIjo0MTAyNDQ0ODAwfQ.RmFrZVNpZ25hdHVyZUZvck1hc2tpbmdUZXN0c05vdFJlYWw"

	secretPart = "F1xtureF0rMasking"    // in both secrets
	jwtPart    = "ZVNpZ25hdHVyZUZvck1h" // in the JWT's signature
)

// TestMaskArgs: a secret or a JWT pasted as an argument, anywhere, never
// comes back in what keymint prints, and the exit code is what it would be
// for any other such argument.
func TestMaskArgs(t *testing.T) {
	env := cliEnv(t)
	cli(t, env, "init")
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"key", "verify", fakeKeySecret}, exitUsage},
		{[]string{fakeKeySecret}, exitUsage},
		{[]string{"key", fakeKeySecret}, exitUsage},
		{[]string{"client", "show", fakeClientSecret}, exitFailure},
		{[]string{"key", "show", fakeKeySecret}, exitFailure},
		{[]string{"--vault", fakeKeySecret, "key", "ls"}, exitFailure},
		{[]string{"--vault=" + fakeKeySecret, "key", "ls"}, exitFailure},
		{[]string{"key", "new", fakeKeySecret}, exitUsage},
		{[]string{"client", "new", fakeClientSecret}, exitUsage},
		{[]string{"key", "new", "ci", "--expires", fakeKeySecret}, exitUsage},
		{[]string{"key", "new", "ci", "--limit", fakeKeySecret}, exitUsage},
		{[]string{"key", "ls", "--" + fakeKeySecret}, exitUsage},
		{[]string{"key", "ls", "-x" + fakeKeySecret}, exitUsage},
		{[]string{"token", "issue", "--client", "x", fakeJWT}, exitUsage},
		{[]string{"token", "issue", "--client", fakeJWT}, exitFailure},
		{[]string{"completion", fakeKeySecret}, exitUsage},
		{[]string{"version", fakeJWT}, exitUsage},
		{[]string{"help", fakeKeySecret}, exitUsage},
		{[]string{"help", fakeJWT}, exitUsage},
		{[]string{"__complete", "key", "show", fakeKeySecret}, exitOK},
		{[]string{"help", "key", fakeKeySecret}, exitUsage},
	} {
		var out, errb bytes.Buffer
		code := run(tc.args, &streams{In: strings.NewReader(""), Out: &out, Err: &errb, inFd: -1}, func(k string) string { return env[k] })
		name := strings.Join(tc.args, " ")
		if code != tc.code {
			t.Errorf("%s: exit %d, want %d: %s", name, code, tc.code, errb.String())
		}
		for _, s := range []string{out.String(), errb.String()} {
			if strings.Contains(s, secretPart) || strings.Contains(s, jwtPart) {
				t.Errorf("%s: the secret is echoed: %q", name, s)
			}
		}
		if code != exitOK && (!strings.HasPrefix(errb.String(), "keymint: ") || strings.Count(errb.String(), "\n") != 1) {
			t.Errorf("%s: stderr %q, want one line", name, errb.String())
		}
		if code != exitOK && !strings.Contains(errb.String(), "****") {
			t.Errorf("%s: stderr %q does not show the mask", name, errb.String())
		}
	}
}

// TestMaskedWriter: what cobra writes is masked even when a secret arrives
// in pieces, and nothing is lost or held back after Flush.
func TestMaskedWriter(t *testing.T) {
	in := "Unknown help topic [`" + fakeKeySecret + "`]\nUsage:\n  keymint [command]\n" + fakeJWT
	for _, size := range []int{1, 7, 20, len(in)} {
		var b bytes.Buffer
		w := newMaskedWriter(&b)
		for p := in; p != ""; {
			n := min(size, len(p))
			if m, err := w.Write([]byte(p[:n])); m != n || err != nil {
				t.Fatalf("Write = %d, %v", m, err)
			}
			p = p[n:]
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		want := "Unknown help topic [`km_****`]\nUsage:\n  keymint [command]\neyJ****"
		if b.String() != want {
			t.Errorf("writes of %d: %q, want %q", size, b.String(), want)
		}
	}
}
