package vault_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"filippo.io/age/plugin"
	"golang.org/x/crypto/ssh"

	"github.com/keymint/keymint/vault"
)

// sshKey returns an OpenSSH ed25519 private key in PEM and its public key
// in authorized_keys form.
func sshKey(t testing.TB) (privPEM []byte, pub string) {
	t.Helper()
	pk, sk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(sk, "test@keymint")
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pk)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(block), string(ssh.MarshalAuthorizedKey(sshPub))
}

func TestReadIdentityFile(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "identity.txt")
	if err := os.WriteFile(path, []byte("# created: today\n"+id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660, 0o666, 0o700 | 0o007} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := vault.ReadIdentityFile(path, nil)
		if !errors.Is(err, vault.ErrIdentityPerm) {
			t.Errorf("mode %04o: %v, want ErrIdentityPerm", mode, err)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, "chmod 600") || !strings.Contains(msg, path) {
			t.Errorf("mode %04o: message %q should name the file and `chmod 600`", mode, msg)
		}
		if strings.Contains(err.Error(), id.String()) {
			t.Error("error quotes the identity")
		}
	}
	for _, mode := range []os.FileMode{0o600, 0o400, 0o700} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		ids, err := vault.ReadIdentityFile(path, nil)
		if err != nil || len(ids) != 1 {
			t.Errorf("mode %04o: %d identities, %v; want 1", mode, len(ids), err)
		}
	}
	if _, err := vault.ReadIdentityFile(filepath.Join(t.TempDir(), "missing"), nil); err == nil || errors.Is(err, vault.ErrIdentityPerm) {
		t.Errorf("missing file: %v", err)
	}
	// A bad file's error names the file, never its contents.
	bad := filepath.Join(t.TempDir(), "bad.txt")
	if err := os.WriteFile(bad, []byte("AGE-SECRET-KEY-1NOTREALLYAKEYBUTLONGENOUGHTOLOOKLIKEONE\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = vault.ReadIdentityFile(bad, nil)
	if err == nil || !strings.Contains(err.Error(), bad) || strings.Contains(err.Error(), "NOTREALLY") {
		t.Errorf("bad identity file: %v", err)
	}
}

// TestIdentitiesUnlock parses each kind of identity and unlocks a vault made
// to the matching recipient, parsed with ParseRecipient.
func TestIdentitiesUnlock(t *testing.T) {
	x, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	h, err := age.GenerateHybridIdentity()
	if err != nil {
		t.Fatal(err)
	}
	sshPriv, sshPub := sshKey(t)
	tests := []struct {
		name      string
		identity  string
		recipient string
	}{
		{"X25519", x.String(), x.Recipient().String()},
		{"hybrid", h.String(), h.Recipient().String()},
		{"OpenSSH ed25519", string(sshPriv), sshPub},
		{"identity file with comments", "# a comment\n\n  " + x.String() + "  \r\n# end\n", x.Recipient().String()},
		{"second of two identities", h.String() + "\n" + x.String() + "\n", x.Recipient().String()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := vault.ParseRecipient(tt.recipient, nil)
			if err != nil {
				t.Fatalf("ParseRecipient(%q): %v", tt.recipient, err)
			}
			path := filepath.Join(t.TempDir(), "vault.db")
			if err := vault.Create(path, vault.CreateOptions{Recipients: []age.Recipient{r}}); err != nil {
				t.Fatal(err)
			}
			ids, err := vault.ParseIdentities(strings.NewReader(tt.identity), nil)
			if err != nil {
				t.Fatalf("ParseIdentities: %v", err)
			}
			v, err := vault.Open(path, vault.Options{Identities: ids})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if err := v.View(func(tx *vault.Tx) error { _, err := tx.Settings(); return err }); err != nil {
				t.Errorf("View: %v", err)
			}
		})
	}

	// age refuses to mix post-quantum and classic recipients, so a hybrid
	// identity cannot share a vault with X25519 or SSH ones.
	hr, _ := vault.ParseRecipient(h.Recipient().String(), nil)
	sr, err := vault.ParseRecipient(sshPub, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, mix := range [][]age.Recipient{{hr, x.Recipient()}, {x.Recipient(), hr}, {hr, sr}} {
		if err := vault.Create(filepath.Join(t.TempDir(), "mixed.db"), vault.CreateOptions{Recipients: mix}); !errors.Is(err, vault.ErrMixedRecipients) {
			t.Errorf("Create with post-quantum and classic recipients = %v, want ErrMixedRecipients", err)
		}
	}

	// A vault to several classic recipients opens with any one of them.
	var rs []age.Recipient
	for _, s := range []string{x.Recipient().String(), sshPub} {
		r, err := vault.ParseRecipient(s, nil)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	path := filepath.Join(t.TempDir(), "team.db")
	if err := vault.Create(path, vault.CreateOptions{Recipients: rs}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{x.String(), string(sshPriv)} {
		ids, err := vault.ParseIdentities(strings.NewReader(s), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := vault.Open(path, vault.Options{Identities: ids}); err != nil {
			t.Errorf("team vault with %.12s...: %v", s, err)
		}
	}
}

func TestParseIdentitiesRejects(t *testing.T) {
	x, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		in   string
		want error // nil: any error
	}{
		{"empty", "", vault.ErrNoIdentity},
		{"comments only", "# nothing here\n\n", vault.ErrNoIdentity},
		{"recipient instead of identity", x.Recipient().String(), nil},
		{"mangled identity", x.String()[:len(x.String())-3] + "QQQ", nil},
		{"good then bad", x.String() + "\nnot an identity at all\n", nil},
		{"SSH public key", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG1hbmdsZWQgYnV0IGxvbmcgZW5vdWdoIHRvIG1hdHRlcg", nil},
		{"broken PEM", "-----BEGIN OPENSSH PRIVATE KEY-----\nbm90IGEga2V5\n-----END OPENSSH PRIVATE KEY-----\n", nil},
		{"unknown PEM key", "-----BEGIN FANCY PRIVATE KEY-----\nbm90IGEga2V5\n-----END FANCY PRIVATE KEY-----\n", nil},
		// An identity after a line too long for a line scanner is not
		// silently dropped: the input is refused.
		{"identity after a 70 KiB line", "# " + strings.Repeat("x", 70<<10) + "\n" + x.String() + "\n", nil},
	}
	longLine := tests[len(tests)-1].in
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ids, err := vault.ParseIdentities(strings.NewReader(tt.in), nil)
			if err == nil {
				t.Fatalf("ParseIdentities = %d identities, want an error", len(ids))
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("ParseIdentities = %v, want %v", err, tt.want)
			}
			if tt.in == longLine && errors.Is(err, vault.ErrNoIdentity) {
				t.Errorf("ParseIdentities = %v: the identity after the long line was dropped unseen", err)
			}
			if len(tt.in) > 8 && strings.Contains(err.Error(), strings.TrimSpace(tt.in)) {
				t.Errorf("error quotes the input: %v", err)
			}
			if strings.Contains(err.Error(), "AGE-SECRET-KEY") {
				t.Errorf("error quotes an identity: %v", err)
			}
		})
	}
}

func TestParseIdentitiesPlugin(t *testing.T) {
	line := plugin.EncodeIdentity("example", []byte("plugin data"))
	ids, err := vault.ParseIdentities(strings.NewReader(line+"\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ids[0].(*plugin.Identity); len(ids) != 1 || !ok {
		t.Errorf("ParseIdentities(plugin identity) = %T", ids[0])
	}
}

func TestParseRecipient(t *testing.T) {
	x, _ := age.GenerateX25519Identity()
	h, _ := age.GenerateHybridIdentity()
	_, sshPub := sshKey(t)
	pluginRecipient := plugin.EncodeRecipient("yubikey", []byte("some data"))
	tests := []struct {
		in     string
		wantOK bool
		want   string // the Go type, for the good ones
	}{
		{x.Recipient().String(), true, "*age.X25519Recipient"},
		{"  " + x.Recipient().String() + "\n", true, "*age.X25519Recipient"},
		{h.Recipient().String(), true, "*age.HybridRecipient"},
		{sshPub, true, "*agessh.Ed25519Recipient"},
		{pluginRecipient, true, "*plugin.Recipient"},
		{"", false, ""},
		{"age1", false, ""},
		{"age1notbech32", false, ""},
		{x.String(), false, ""}, // an identity is not a recipient
		{"ssh-ed25519 AAAA", false, ""},
		{"ssh-dss AAAAB3NzaC1kc3MAAACBAP", false, ""},
		{"hello", false, ""},
	}
	for _, tt := range tests {
		r, err := vault.ParseRecipient(tt.in, nil)
		if tt.wantOK {
			if err != nil {
				t.Errorf("ParseRecipient(%.20q) = %v", tt.in, err)
			} else if got := typeName(r); got != tt.want {
				t.Errorf("ParseRecipient(%.20q) is %s, want %s", tt.in, got, tt.want)
			}
			continue
		}
		if err == nil {
			t.Errorf("ParseRecipient(%.20q) = %T, want an error", tt.in, r)
		}
		if strings.HasPrefix(tt.in, "AGE-SECRET-KEY") && strings.Contains(err.Error(), tt.in) {
			t.Errorf("ParseRecipient quotes an identity: %v", err)
		}
	}
}
