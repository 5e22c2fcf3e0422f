package vault_test

import (
	"strings"
	"testing"

	"filippo.io/age"
	"filippo.io/age/plugin"

	"github.com/keymint/keymint/vault"
)

// FuzzParseIdentities: identity input may hold secrets, so whatever it is,
// ParseIdentities must not panic and its errors must not quote it.
func FuzzParseIdentities(f *testing.F) {
	x, err := age.GenerateX25519Identity()
	if err != nil {
		f.Fatal(err)
	}
	h, err := age.GenerateHybridIdentity()
	if err != nil {
		f.Fatal(err)
	}
	sshPriv, sshPub := sshKey(f)
	for _, s := range []string{
		x.String(),
		h.String(),
		string(sshPriv),
		"# comment\n" + x.String() + "\n\n",
		x.String()[:40],
		strings.ToLower(x.String()),
		x.Recipient().String(),
		sshPub,
		plugin.EncodeIdentity("yubikey", []byte("data")),
		"AGE-PLUGIN-X-1QQQQ",
		"AGE-SECRET-KEY-1",
		"AGE-SECRET-KEY-PQ-1",
		string(sshPriv[:len(sshPriv)/2]),
		strings.Replace(string(sshPriv), "OPENSSH", "RSA", 2),
		"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
		"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
		"",
		"\x00\xff\n\r",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		ids, err := vault.ParseIdentities(strings.NewReader(in), nil)
		if err == nil {
			if len(ids) == 0 {
				t.Fatal("no identities and no error")
			}
			return
		}
		msg := err.Error()
		if len(in) > 8 && strings.Contains(msg, in) {
			t.Fatalf("error quotes the input: %q", msg)
		}
		// Nor any secret-looking word of it.
		for _, w := range strings.Fields(in) {
			if len(w) > 16 && strings.HasPrefix(strings.ToUpper(w), "AGE-") && strings.Contains(msg, w) {
				t.Fatalf("error quotes %q from the input: %q", w, msg)
			}
		}
	})
}
