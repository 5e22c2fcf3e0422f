package vault_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	bolt "go.etcd.io/bbolt"

	"github.com/keymint/keymint/vault"
)

// rekeyFixture is a vault with several of every kind of secret: API keys,
// client secrets (one rotated within its grace, so with two live secrets),
// refresh tokens, signing keys, and usage counted.
type rekeyFixture struct {
	tv            *testVault
	keys, clients map[string]string // name -> secret
	refresh       []string
	signing       map[string]ed25519.PublicKey // kid -> public key
}

func newRekeyFixture(t *testing.T, tv *testVault, n int) *rekeyFixture {
	t.Helper()
	f := &rekeyFixture{tv: tv, keys: map[string]string{}, clients: map[string]string{}, signing: map[string]ed25519.PublicKey{}}
	for i := range n {
		tv.update(t, func(tx *vault.Tx) error {
			name := fmt.Sprintf("key-%d", i)
			f.keys[name] = newSecret(t, "km")
			k := &vault.Key{Credential: vault.Credential{Name: name, Scopes: []string{"api:read"}}}
			if err := tx.CreateKey(k, f.keys[name]); err != nil {
				return err
			}
			if err := tx.AddUsage(k.ID, []string{"2026-03"}, int64(i+1)); err != nil {
				return err
			}
			name = fmt.Sprintf("client-%d", i)
			f.clients[name] = newSecret(t, "kmcs")
			c := &vault.Client{Credential: vault.Credential{Name: name, Scopes: []string{"api:read"}}, GrantTypes: []string{"client_credentials"}, TokenTTL: time.Hour}
			return tx.CreateClient(c, f.clients[name])
		})
	}
	// A rotation within its grace: old and new secrets both live.
	old := f.clients["client-0"]
	f.clients["client-0"] = newSecret(t, "kmcs")
	tv.update(t, func(tx *vault.Tx) error {
		_, err := tx.RotateClient("client-0", f.clients["client-0"], 24*time.Hour)
		return err
	})
	f.clients["client-0 (old secret)"] = old

	// Users, a grant, refresh tokens.
	tv.update(t, func(tx *vault.Tx) error {
		_, _, g, err := addFlow(t, tx, "alice", "portal")
		if err != nil {
			return err
		}
		for range n {
			rt := newSecret(t, "kmrt")
			if err := tx.CreateRefreshToken(rt, &vault.RefreshToken{GrantID: g.ID, Scopes: []string{"openid"}, AuthTime: epoch, ExpiresAt: tv.Clock.Now().Add(24 * time.Hour)}); err != nil {
				return err
			}
			f.refresh = append(f.refresh, rt)
		}
		return nil
	})
	// Two signing keys: one retired, one active.
	for i := range 2 {
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		kid := fmt.Sprintf("sk-%d", i)
		f.signing[kid] = pub
		tv.update(t, func(tx *vault.Tx) error {
			return tx.AddSigningKey(&vault.SigningKey{ID: kid, Alg: "EdDSA", PrivateKey: der}, time.Hour)
		})
	}
	return f
}

// check proves every secret still works on v: API keys and client
// secrets authenticate, refresh tokens rotate, signing keys sign, usage is
// as it was.
func (f *rekeyFixture) check(t *testing.T, v *vault.Vault) {
	t.Helper()
	err := v.View(func(tx *vault.Tx) error {
		for name, s := range f.keys {
			k, err := tx.KeyBySecret(s)
			if err != nil || k.Name != name {
				return fmt.Errorf("key %s: %v", name, err)
			}
			u, err := tx.Usage(k.ID, "2026-03")
			if err != nil || u.Used == 0 {
				return fmt.Errorf("usage of key %s: %+v, %v", name, u, err)
			}
		}
		for name, s := range f.clients {
			c, err := tx.ClientBySecret(s)
			if err != nil || !strings.HasPrefix(name, c.Name) {
				return fmt.Errorf("client %s: %v", name, err)
			}
		}
		keys, err := tx.SigningKeys()
		if err != nil || len(keys) != len(f.signing) {
			return fmt.Errorf("signing keys: %d, %v", len(keys), err)
		}
		for _, k := range keys {
			priv, err := x509.ParsePKCS8PrivateKey(k.PrivateKey)
			if err != nil {
				return fmt.Errorf("signing key %s: %v", k.ID, err)
			}
			sig := ed25519.Sign(priv.(ed25519.PrivateKey), []byte("claims"))
			if !ed25519.Verify(f.signing[k.ID], []byte("claims"), sig) {
				return fmt.Errorf("signing key %s signs for another public key", k.ID)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = v.Update(func(tx *vault.Tx) error {
		for i, rt := range f.refresh {
			next := newSecret(t, "kmrt")
			if _, err := tx.RotateRefreshToken(rt, next); err != nil {
				return fmt.Errorf("refresh token %d: %v", i, err)
			}
			f.refresh[i] = next
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRekeyKeepsSecrets: after a rekey every secret works, the file
// verifies whole, no sealed value is what it was, and the change is one
// audit entry.
func TestRekeyKeepsSecrets(t *testing.T) {
	tv := newTestVault(t)
	f := newRekeyFixture(t, tv, 5)
	before := rawRecords(t, tv.Path, "keys")
	auditBefore := tv.auditLen(t)

	var calls, lastDone, lastTotal int
	nv, rep, err := tv.Rekey(vault.RekeyOptions{Progress: func(done, total int) {
		if done < lastDone || done > total {
			t.Errorf("progress %d/%d after %d", done, total, lastDone)
		}
		calls++
		lastDone, lastTotal = done, total
	}})
	if err != nil {
		t.Fatalf("Rekey: %v", err)
	}
	if calls == 0 || lastDone != lastTotal || lastDone != rep.Records {
		t.Errorf("progress ended at %d/%d after %d calls; report %+v", lastDone, lastTotal, calls, rep)
	}
	if rep.Recipients != 1 || rep.AuditEntries != auditBefore+1 {
		t.Errorf("report %+v, want 1 recipient and %d audit entries", rep, auditBefore+1)
	}

	// The old Vault's keys open nothing now.
	if err := tv.View(func(*vault.Tx) error { return nil }); !errors.Is(err, vault.ErrRekeyed) {
		t.Errorf("old Vault after rekey: %v, want ErrRekeyed", err)
	}
	tv.Vault = nv
	f.check(t, nv)

	// Opened afresh with the same identity, too.
	v2, err := openWith(tv, tv.Identity)
	if err != nil {
		t.Fatalf("open after rekey: %v", err)
	}
	f.check(t, v2)
	rep2, err := v2.Verify()
	if err != nil {
		t.Fatalf("Verify after rekey: %v", err)
	}
	if rep2.Records["keys"] != 5 || rep2.Records["clients"] != 6 || rep2.Records["signing"] != 2 {
		t.Errorf("records after rekey: %v", rep2.Records)
	}
	// Every sealed key record is new.
	after := rawRecords(t, tv.Path, "keys")
	if len(after) != len(before) {
		t.Errorf("%d key records, was %d", len(after), len(before))
	}
	for k, val := range after {
		for _, old := range before {
			if bytes.Equal(old, val) {
				t.Errorf("key record %x kept its old seal", k)
			}
		}
	}
	actions := tv.auditActions(t, 0, slices.Collect(mapValues(f.keys))...)
	if countOf(actions, "vault.rekey") != 1 {
		t.Errorf("audit: %q, want one vault.rekey", actions)
	}
}

func mapValues(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for _, v := range m {
			if !yield(v) {
				return
			}
		}
	}
}

// TestRekeyGeneration: a rekey changes no record, so it does not advance
// the generation.
func TestRekeyGeneration(t *testing.T) {
	tv := newTestVault(t)
	newRekeyFixture(t, tv, 1)
	gen := tv.generation(t)
	nv, _, err := tv.Rekey(vault.RekeyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tv.Vault = nv
	if g := tv.generation(t); g != gen {
		t.Errorf("generation %d -> %d across a rekey", gen, g)
	}
}

// TestRekeyRemovedRecipient: after `recipients rm X` and a rekey, X's
// identity opens neither the vault, nor (if X kept the old data key and
// the ciphertext it came in) any record of it.
func TestRekeyRemovedRecipient(t *testing.T) {
	tv := newTestVault(t)
	f := newRekeyFixture(t, tv, 2)
	x := recipientsX25519(t)
	ids := []age.Identity{tv.Identity}
	if _, err := tv.AddRecipients(ids, []string{x.Recipient().String()}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := openWith(tv, x); err != nil {
		t.Fatalf("X opens the vault while a recipient: %v", err)
	}
	// What X can keep while a recipient: the data key's ciphertext to it,
	// and the key check that goes with it.
	keptDataKey, keptCheck := metaValue(t, tv.Path, "data_key"), metaValue(t, tv.Path, "key_check")

	if _, err := tv.RemoveRecipients(ids, []string{x.Recipient().String()}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := openWith(tv, x); !errors.Is(err, vault.ErrWrongIdentity) {
		t.Fatalf("X opens the vault after rm: %v", err)
	}
	nv, _, err := tv.Rekey(vault.RekeyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tv.Vault = nv
	if _, err := openWith(tv, x); !errors.Is(err, vault.ErrWrongIdentity) {
		t.Errorf("X opens the vault after rm and rekey: %v", err)
	}
	f.check(t, nv)

	// X puts back the ciphertext it kept, in a copy of the file: X's old
	// data key unlocks it, but opens nothing sealed in it.
	stolen := tv.Path + ".x"
	data, err := os.ReadFile(tv.Path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stolen, data, 0o600); err != nil {
		t.Fatal(err)
	}
	boltUpdate(t, stolen, func(btx *bolt.Tx) error {
		b := btx.Bucket([]byte("meta"))
		if err := b.Put([]byte("data_key"), keptDataKey); err != nil {
			return err
		}
		return b.Put([]byte("key_check"), keptCheck)
	})
	_, err = vault.Open(stolen, vault.Options{Identities: []age.Identity{x}, LockTimeout: 5 * time.Second})
	if err == nil || errors.Is(err, vault.ErrWrongIdentity) {
		t.Fatalf("the old data key on the rekeyed file: %v, want a failure to open its sealed values", err)
	}
	if !errors.Is(err, vault.ErrTampered) && !errors.Is(err, vault.ErrCorrupt) {
		t.Errorf("the old data key on the rekeyed file: %v", err)
	}
	// Nothing in the rekeyed file opens under the old key; the old key's
	// check fails on it as it is.
	if bytes.Equal(metaValue(t, tv.Path, "key_check"), keptCheck) {
		t.Errorf("the key check did not change")
	}
}

// metaValue reads a clear value of the meta bucket from a vault file.
func metaValue(t testing.TB, path, key string) []byte {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var out []byte
	if err := db.View(func(btx *bolt.Tx) error {
		out = bytes.Clone(btx.Bucket([]byte("meta")).Get([]byte(key)))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRekeyAllOrNothing: a rekey that fails after re-sealing half the
// records (here: a panic from its progress callback, as a crash would
// stop it) leaves the file exactly as it was, under the old key.
func TestRekeyAllOrNothing(t *testing.T) {
	tv := newTestVault(t)
	f := newRekeyFixture(t, tv, 3)
	before := fileSum(t, tv.Path)
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("no panic")
			}
		}()
		tv.Rekey(vault.RekeyOptions{Progress: func(done, total int) {
			if done > total/2 {
				panic("stop")
			}
		}})
	}()
	if fileSum(t, tv.Path) != before {
		t.Fatal("a failed rekey changed the file")
	}
	f.check(t, tv.Vault)

	// A tampered record stops it before anything is re-sealed: a rekey
	// never blesses what the vault did not write.
	tv.boltUpdate(t, func(btx *bolt.Tx) error {
		b := btx.Bucket([]byte("keys"))
		k, v := b.Cursor().First()
		v = bytes.Clone(v)
		v[len(v)-1] ^= 1
		return b.Put(k, v)
	})
	before = fileSum(t, tv.Path)
	if _, _, err := tv.Rekey(vault.RekeyOptions{}); !errors.Is(err, vault.ErrTampered) {
		t.Errorf("rekey of a tampered vault: %v, want ErrTampered", err)
	}
	if fileSum(t, tv.Path) != before {
		t.Error("a refused rekey changed the file")
	}
}

// TestRekeyMemStore: the same on the optimistic in-memory store.
func TestRekeyMemStore(t *testing.T) {
	id := recipientsX25519(t)
	v, err := vault.CreateIn(vault.NewMemStore(), "mem", vault.CreateOptions{
		Recipients:     []age.Recipient{id.Recipient()},
		RecipientNames: []string{id.Recipient().String()},
		Settings:       vault.Settings{KeyPrefix: "km", ClientSecretPrefix: "kmcs"},
	})
	if err != nil {
		t.Fatal(err)
	}
	secret := newSecret(t, "km")
	if err := v.Update(func(tx *vault.Tx) error {
		return tx.CreateKey(&vault.Key{Credential: vault.Credential{Name: "k"}}, secret)
	}); err != nil {
		t.Fatal(err)
	}
	nv, rep, err := v.Rekey(vault.RekeyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := nv.View(func(tx *vault.Tx) error {
		_, err := tx.KeyBySecret(secret)
		return err
	}); err != nil {
		t.Errorf("key after rekey: %v", err)
	}
	if _, err := nv.Verify(); err != nil || rep.Records == 0 {
		t.Errorf("Verify = %v; report %+v", err, rep)
	}
}

// TestRekeyPassphrase: a passphrase vault's new data key is encrypted to
// its passphrase, which the rekey needs.
func TestRekeyPassphrase(t *testing.T) {
	if testing.Short() {
		t.Skip("scrypt at its real work factor")
	}
	const pass = "correct horse battery staple"
	r, id, err := vault.Passphrase(pass)
	if err != nil {
		t.Fatal(err)
	}
	tv := newVaultTo(t, []age.Recipient{r}, nil, id)
	secret := newSecret(t, "km")
	tv.update(t, func(tx *vault.Tx) error {
		return tx.CreateKey(&vault.Key{Credential: vault.Credential{Name: "k"}}, secret)
	})
	if _, _, err := tv.Rekey(vault.RekeyOptions{}); !errors.Is(err, vault.ErrPassphraseNeeded) {
		t.Fatalf("rekey without the passphrase: %v, want ErrPassphraseNeeded", err)
	}
	nv, rep, err := tv.Rekey(vault.RekeyOptions{Passphrase: pass})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Recipients != 0 {
		t.Errorf("report %+v: a passphrase has no recipients", rep)
	}
	tv.Vault = nv
	v2, err := openWith(tv, id)
	if err != nil {
		t.Fatalf("open with the passphrase after rekey: %v", err)
	}
	if err := v2.View(func(tx *vault.Tx) error {
		_, err := tx.KeyBySecret(secret)
		return err
	}); err != nil {
		t.Errorf("key after rekey: %v", err)
	}
}

// TestRekeyManyCredentials: at 10,000 credentials (5,000 keys, 5,000
// clients) every secret is still valid after a rekey.
func TestRekeyManyCredentials(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("10,000 credentials: without -race and -short")
	}
	tv := newTestVault(t)
	const n = 5000
	keys, clients := make([]string, n), make([]string, n)
	for batch := 0; batch < n; batch += 1000 {
		tv.update(t, func(tx *vault.Tx) error {
			for i := batch; i < batch+1000; i++ {
				keys[i], clients[i] = newSecret(t, "km"), newSecret(t, "kmcs")
				if err := tx.CreateKey(&vault.Key{Credential: vault.Credential{Name: fmt.Sprintf("key-%05d", i)}}, keys[i]); err != nil {
					return err
				}
				c := &vault.Client{Credential: vault.Credential{Name: fmt.Sprintf("client-%05d", i)}, GrantTypes: []string{"client_credentials"}, TokenTTL: time.Hour}
				if err := tx.CreateClient(c, clients[i]); err != nil {
					return err
				}
			}
			return nil
		})
	}
	nv, rep, err := tv.Rekey(vault.RekeyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tv.Vault = nv
	t.Logf("re-sealed %d records", rep.Records)
	tv.view(t, func(tx *vault.Tx) error {
		for i := range n {
			if k, err := tx.KeyBySecret(keys[i]); err != nil || k.Name != fmt.Sprintf("key-%05d", i) {
				t.Fatalf("key %d: %v", i, err)
			}
			if c, err := tx.ClientBySecret(clients[i]); err != nil || c.Name != fmt.Sprintf("client-%05d", i) {
				t.Fatalf("client %d: %v", i, err)
			}
		}
		return nil
	})
}
