package vault_test

import (
	"crypto/rand"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/keymint/keymint/vault"
	"github.com/keymint/keymint/vault/etcdtest"
)

// TestCopyRoundTrip: a vault file copied into etcd and from there back to a
// new file keeps every secret working in both copies (keys, client secrets
// with a rotation in its grace, refresh tokens, signing keys, usage),
// verifies whole, and is refused over an existing vault. The store allows
// 300 operations a commit (the fixture's check rotates 40 refresh tokens in
// one), so the copy takes several commits; the meta bucket comes last, so
// nothing opens half a copy.
func TestCopyRoundTrip(t *testing.T) {
	tv := newTestVault(t)
	f := newRekeyFixture(t, tv, 40)
	before, err := tv.Verify()
	if err != nil {
		t.Fatal(err)
	}
	c := etcdtest.Start(t, 1)
	at := vault.Location{Etcd: &vault.EtcdConfig{Endpoints: c.Endpoints(), Prefix: "/copy-" + rand.Text()[:8], Timeout: 5 * time.Second, MaxTxnOps: 300}}

	rep, err := tv.CopyTo(at)
	if err != nil {
		t.Fatalf("copy into etcd: %v", err)
	}
	if rep.Commits < 3 || rep.Verified.Revision != before.Revision || rep.Verified.AuditEntries != before.AuditEntries {
		t.Errorf("copy into etcd: %+v, source %+v", rep, before)
	}
	t.Logf("into etcd: %d values, %d bytes, %d commits", rep.Values, rep.Bytes, rep.Commits)
	ev, err := vault.OpenAt(at, vault.Options{Identities: []age.Identity{tv.Identity}, Now: tv.Clock.Now})
	if err != nil {
		t.Fatalf("open the copy in etcd: %v", err)
	}
	defer ev.Close()
	f.check(t, ev)

	back := vault.Location{File: filepath.Join(t.TempDir(), "back.db")}
	if _, err := ev.CopyTo(back); err != nil {
		t.Fatalf("copy back to a file: %v", err)
	}
	fv, err := vault.OpenAt(back, vault.Options{Identities: []age.Identity{tv.Identity}, Now: tv.Clock.Now, LockTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("open the copy back: %v", err)
	}
	f.check(t, fv)

	for name, l := range map[string]vault.Location{"etcd": at, "file": back, "the source itself": {File: tv.Path}} {
		if _, err := tv.CopyTo(l); !errors.Is(err, vault.ErrExists) {
			t.Errorf("copy over the vault at %s: %v, want ErrExists", name, err)
		}
	}
	if err := (vault.Location{Etcd: &vault.EtcdConfig{Endpoints: c.Endpoints(), Prefix: "/nothing-here"}}).Exists(); !errors.Is(err, vault.ErrNoVault) {
		t.Errorf("Exists on an empty prefix: %v, want ErrNoVault", err)
	}
}
