package vault_test

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/keymint/keymint/vault"
)

// newVaultTo is newTestVault for a vault encrypted to recipients (named
// names) and opened with id.
func newVaultTo(t testing.TB, recipients []age.Recipient, names []string, id age.Identity) *testVault {
	t.Helper()
	clock := newClock()
	path := filepath.Join(t.TempDir(), "vault.db")
	co := vault.CreateOptions{
		Recipients:     recipients,
		RecipientNames: names,
		Settings:       vault.Settings{KeyPrefix: "km", ClientSecretPrefix: "kmcs"},
		Options:        vault.Options{Now: clock.Now, Actor: "tester@host"},
	}
	if err := vault.Create(path, co); err != nil {
		t.Fatalf("Create: %v", err)
	}
	tv := &testVault{Path: path, Clock: clock}
	v, err := openWith(tv, id)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	tv.Vault = v
	t.Cleanup(func() {
		if !tv.Tampered && !t.Failed() {
			tv.check(t)
		}
	})
	return tv
}

// openWith opens tv's file with ids, as another member of the team would.
func openWith(tv *testVault, ids ...age.Identity) (*vault.Vault, error) {
	return vault.Open(tv.Path, vault.Options{Identities: ids, Now: tv.Clock.Now, LockTimeout: 5 * time.Second})
}

func recipientsX25519(t testing.TB) *age.X25519Identity {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestRecipients adds and removes recipients of a classic (X25519) vault:
// every refusal changes nothing, and each change lets exactly the listed
// recipients open the vault.
func TestRecipients(t *testing.T) {
	tv := newTestVault(t)
	own := tv.Identity.Recipient().String()
	other := recipientsX25519(t)
	third := recipientsX25519(t)
	pq, err := vault.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	ids := []age.Identity{tv.Identity}

	list := func() []string {
		t.Helper()
		l, err := tv.Recipients()
		if err != nil {
			t.Fatalf("Recipients: %v", err)
		}
		if l.Passphrase {
			t.Fatalf("Recipients says passphrase")
		}
		return l.Recipients
	}
	if got := list(); !slices.Equal(got, []string{own}) {
		t.Fatalf("Recipients = %q, want the vault's own", got)
	}

	for _, c := range []struct {
		name string
		add  []string
		rm   []string
		want error // nil: any error
	}{
		{name: "malformed age", add: []string{"age1notarecipient"}},
		{name: "not a recipient at all", add: []string{"hello"}},
		{name: "empty", add: []string{""}},
		{name: "a secret key", add: []string{strings.ToUpper(other.String())}},
		{name: "duplicate", add: []string{own}, want: vault.ErrRecipientExists},
		{name: "twice in one call", add: []string{other.Recipient().String(), other.Recipient().String()}, want: vault.ErrRecipientExists},
		{name: "post-quantum to classic", add: []string{pq.Recipient().String()}, want: vault.ErrMixedRecipients},
		{name: "a good one then a bad one", add: []string{other.Recipient().String(), "age1bad"}},
		{name: "remove the last", rm: []string{own}, want: vault.ErrLastRecipient},
		{name: "remove one not there", rm: []string{other.Recipient().String()}, want: vault.ErrNotRecipient},
		{name: "remove malformed", rm: []string{"age1bad"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := fileSum(t, tv.Path)
			if c.add != nil {
				_, err = tv.AddRecipients(ids, c.add, nil)
			} else {
				_, err = tv.RemoveRecipients(ids, c.rm, nil)
			}
			if err == nil || (c.want != nil && !errors.Is(err, c.want)) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if strings.Contains(err.Error(), "AGE-SECRET-KEY") {
				t.Errorf("error shows a secret key: %v", err)
			}
			if fileSum(t, tv.Path) != before {
				t.Errorf("a refused change wrote to the file")
			}
		})
	}

	// A wrong identity cannot change recipients.
	if _, err := tv.AddRecipients([]age.Identity{third}, []string{third.Recipient().String()}, nil); !errors.Is(err, vault.ErrWrongIdentity) {
		t.Errorf("add with a stranger's identity: %v, want ErrWrongIdentity", err)
	}

	// Add two; each opens the vault; the list keeps the order given.
	added, err := tv.AddRecipients(ids, []string{" " + other.Recipient().String() + " ", third.Recipient().String()}, nil)
	if err != nil {
		t.Fatalf("AddRecipients: %v", err)
	}
	if !slices.Equal(added, []string{other.Recipient().String(), third.Recipient().String()}) {
		t.Errorf("added = %q", added)
	}
	if got := list(); !slices.Equal(got, []string{own, other.Recipient().String(), third.Recipient().String()}) {
		t.Errorf("Recipients = %q", got)
	}
	for _, id := range []age.Identity{tv.Identity, other, third} {
		if _, err := openWith(tv, id); err != nil {
			t.Errorf("open with a recipient's identity: %v", err)
		}
	}

	// Remove one, by the member who was added (the vault's creator is no
	// one special).
	removed, err := tv.RemoveRecipients([]age.Identity{other}, []string{third.Recipient().String()}, nil)
	if err != nil || !slices.Equal(removed, []string{third.Recipient().String()}) {
		t.Fatalf("RemoveRecipients = %q, %v", removed, err)
	}
	if _, err := openWith(tv, third); !errors.Is(err, vault.ErrWrongIdentity) {
		t.Errorf("open with a removed recipient's identity: %v, want ErrWrongIdentity", err)
	}
	if got := list(); !slices.Equal(got, []string{own, other.Recipient().String()}) {
		t.Errorf("Recipients = %q", got)
	}
	// Removing every one left is refused as a whole.
	if _, err := tv.RemoveRecipients(ids, []string{own, other.Recipient().String()}, nil); !errors.Is(err, vault.ErrLastRecipient) {
		t.Errorf("remove all: %v, want ErrLastRecipient", err)
	}

	actions := tv.auditActions(t, 0)
	if n := countOf(actions, "vault.recipients.add"); n != 1 {
		t.Errorf("audit: %d vault.recipients.add entries, want 1: %q", n, actions)
	}
	if n := countOf(actions, "vault.recipients.rm"); n != 1 {
		t.Errorf("audit: %d vault.recipients.rm entries, want 1: %q", n, actions)
	}
}

func countOf(s []string, v string) int {
	n := 0
	for _, x := range s {
		if x == v {
			n++
		}
	}
	return n
}

// TestRecipientsPostQuantum: a post-quantum vault takes post-quantum
// recipients and refuses classic ones, SSH keys included.
func TestRecipientsPostQuantum(t *testing.T) {
	id, err := vault.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	tv := newVaultTo(t, []age.Recipient{id.Recipient()}, []string{id.Recipient().String()}, id)
	ids := []age.Identity{id}
	const sshKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW+uObz5dvMgjz1OxfM/XXUB+VHtZ6isGN alice@example"
	for _, r := range []string{recipientsX25519(t).Recipient().String(), sshKey} {
		if _, err := tv.AddRecipients(ids, []string{r}, nil); !errors.Is(err, vault.ErrMixedRecipients) {
			t.Errorf("add %.20s...: %v, want ErrMixedRecipients", r, err)
		}
	}
	other, err := vault.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tv.AddRecipients(ids, []string{other.Recipient().String()}, nil); err != nil {
		t.Fatalf("add a post-quantum recipient: %v", err)
	}
	if _, err := openWith(tv, other); err != nil {
		t.Errorf("open with the added recipient: %v", err)
	}
}

// TestRecipientsSSH: an SSH key is one recipient whatever its comment.
func TestRecipientsSSH(t *testing.T) {
	tv := newTestVault(t)
	ids := []age.Identity{tv.Identity}
	const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW+uObz5dvMgjz1OxfM/XXUB+VHtZ6isGN"
	if _, err := tv.AddRecipients(ids, []string{key + " alice@laptop"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := tv.AddRecipients(ids, []string{key}, nil); !errors.Is(err, vault.ErrRecipientExists) {
		t.Errorf("the same key again: %v, want ErrRecipientExists", err)
	}
	if removed, err := tv.RemoveRecipients(ids, []string{key + " other comment"}, nil); err != nil || !slices.Equal(removed, []string{key + " alice@laptop"}) {
		t.Errorf("RemoveRecipients = %q, %v", removed, err)
	}
}

// TestRecipientsPassphrase: a passphrase vault says so, and refuses
// changes of recipients (age's scrypt recipient stands alone).
func TestRecipientsPassphrase(t *testing.T) {
	if testing.Short() {
		t.Skip("scrypt at its real work factor")
	}
	r, id, err := vault.Passphrase("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	tv := newVaultTo(t, []age.Recipient{r}, nil, id)
	l, err := tv.Recipients()
	if err != nil || !l.Passphrase || len(l.Recipients) != 0 {
		t.Fatalf("Recipients = %+v, %v", l, err)
	}
	before := fileSum(t, tv.Path)
	x := recipientsX25519(t).Recipient().String()
	if _, err := tv.AddRecipients([]age.Identity{id}, []string{x}, nil); !errors.Is(err, vault.ErrPassphraseVault) {
		t.Errorf("add: %v, want ErrPassphraseVault", err)
	}
	if _, err := tv.RemoveRecipients([]age.Identity{id}, []string{x}, nil); !errors.Is(err, vault.ErrPassphraseVault) {
		t.Errorf("rm: %v, want ErrPassphraseVault", err)
	}
	if fileSum(t, tv.Path) != before {
		t.Errorf("a refused change wrote to the file")
	}
}
