package vault

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"filippo.io/age"
	bolt "go.etcd.io/bbolt"

	"github.com/keymint/keymint/apikey"
)

// The tamper tests change a vault file as someone who can write it would,
// with bbolt directly, and check that every change is reported, naming the
// bucket, by a point read of the record concerned and by Verify, and never
// silently accepted.

// tamperFixture is a vault file at two moments: old, and newer after
// changes to every kind of record, with the identity that opens both.
type tamperFixture struct {
	id         *age.X25519Identity
	old, newer []byte
	clock      time.Time
}

func buildTamperFixture(t *testing.T) *tamperFixture {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	path := filepath.Join(t.TempDir(), "vault.db")
	err = Create(path, CreateOptions{
		Recipients: []age.Recipient{id.Recipient()},
		Settings:   Settings{KeyPrefix: "km", ClientSecretPrefix: "kmcs"},
		Options:    Options{Now: clock},
	})
	if err != nil {
		t.Fatal(err)
	}
	v, err := Open(path, Options{Identities: []age.Identity{id}, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	secret := func() string {
		s, err := apikey.Generate("km")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	update := func(fn func(tx *Tx) error) {
		t.Helper()
		if err := v.Update(fn); err != nil {
			t.Fatal(err)
		}
	}
	update(func(tx *Tx) error {
		for _, name := range []string{"k1", "k2", "k3"} {
			k := &Key{Credential: Credential{Name: name, Limits: []Limit{{Count: 5, Period: "day"}}}}
			if err := tx.CreateKey(k, secret()); err != nil {
				return err
			}
			if err := tx.AddUsage(k.ID, []string{"2026-11-20"}, 2); err != nil {
				return err
			}
			if err := tx.TouchKey(k.ID); err != nil {
				return err
			}
		}
		for _, name := range []string{"c1", "c2"} {
			if err := tx.CreateClient(&Client{Credential: Credential{Name: name}}, secret()); err != nil {
				return err
			}
		}
		for _, kid := range []string{"sk1", "sk2"} {
			if err := tx.AddSigningKey(&SigningKey{ID: kid, Alg: "ES256", PrivateKey: []byte("not a real key")}, time.Hour); err != nil {
				return err
			}
		}
		for _, jti := range []string{"jti-1", "jti-2"} {
			if err := tx.Revoke(Revocation{JTI: jti, ClientID: "cl_x", ExpiresAt: now.Add(time.Hour)}); err != nil {
				return err
			}
		}
		return nil
	})
	// The authorization-code flow's records: two users who allowed a
	// client in a permission group, with a code and a refresh token each.
	codes := map[string]string{}
	refresh := map[string]string{}
	for _, name := range []string{"u1", "u2", "u1-next"} {
		codes[name] = name + "-code-0123456789abcdefghij"
		s, err := apikey.Generate("kmrt")
		if err != nil {
			t.Fatal(err)
		}
		refresh[name] = s
	}
	update(func(tx *Tx) error {
		g := &PermissionGroup{Name: "g1", Scopes: []string{"openid"}}
		if err := tx.CreatePermissionGroup(g); err != nil {
			return err
		}
		c := &Client{Credential: Credential{Name: "spa"}, Public: true, PermissionGroup: g.ID}
		if err := tx.CreateClient(c, ""); err != nil {
			return err
		}
		for i, name := range []string{"u1", "u2"} {
			u := &User{Name: name, PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"}
			if err := tx.CreateUser(u); err != nil {
				return err
			}
			gr := &Grant{UserID: u.ID, ClientID: c.ID, Scopes: []string{"openid"}}
			if err := tx.SaveGrant(gr); err != nil {
				return err
			}
			ac := &AuthCode{ClientID: c.ID, UserID: u.ID, GrantID: gr.ID, RedirectURI: "https://spa.example/cb",
				CodeChallenge: "challenge", ExpiresAt: now.Add(time.Minute)}
			if err := tx.CreateAuthCode(codes[name], ac); err != nil {
				return err
			}
			rt := &RefreshToken{GrantID: gr.ID, ExpiresAt: now.Add(time.Duration(i+1) * time.Hour)}
			if err := tx.CreateRefreshToken(refresh[name], rt); err != nil {
				return err
			}
		}
		return nil
	})
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	update(func(tx *Tx) error {
		if _, err := tx.DeleteKeys("k3"); err != nil {
			return err
		}
		if _, err := tx.RotateKey("k1", secret(), 0); err != nil {
			return err
		}
		if err := tx.AddUsage(mustKeyID(tx, "k2"), []string{"2026-11-20"}, 3); err != nil {
			return err
		}
		if _, err := tx.RenameClient("c1", "c1-renamed"); err != nil {
			return err
		}
		if err := tx.AddSigningKey(&SigningKey{ID: "sk3", Alg: "ES256", PrivateKey: []byte("another")}, time.Hour); err != nil {
			return err
		}
		if err := tx.Revoke(Revocation{JTI: "jti-3", ClientID: "cl_x", ExpiresAt: now.Add(time.Hour)}); err != nil {
			return err
		}
		u1, err := tx.User("u1")
		if err != nil {
			return err
		}
		u1.PasswordHash = "$argon2id$v=19$m=65536,t=3,p=4$bmV3$bmV3aGFzaA"
		if err := tx.SaveUser(u1); err != nil {
			return err
		}
		if _, err := tx.DeleteUsers("u2"); err != nil {
			return err
		}
		g, err := tx.PermissionGroup("g1")
		if err != nil {
			return err
		}
		g.Scopes = append(g.Scopes, "profile")
		if err := tx.SavePermissionGroup(g); err != nil {
			return err
		}
		c, err := tx.Client("spa")
		if err != nil {
			return err
		}
		if err := tx.SaveGrant(&Grant{UserID: u1.ID, ClientID: c.ID, Scopes: []string{"profile"}}); err != nil {
			return err
		}
		if err := tx.TouchGrant(mustGrantID(tx, u1.ID, c.ID), now); err != nil {
			return err
		}
		if _, err := tx.RedeemAuthCode(codes["u1"]); err != nil {
			return err
		}
		_, err = tx.RotateRefreshToken(refresh["u1"], refresh["u1-next"])
		return err
	})
	newer, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return &tamperFixture{id: id, old: old, newer: newer, clock: now}
}

func mustGrantID(tx *Tx, userID, clientID string) string {
	g, err := tx.GrantFor(userID, clientID)
	if err != nil {
		panic(err)
	}
	return g.ID
}

func mustKeyID(tx *Tx, name string) string {
	k, err := tx.Key(name)
	if err != nil {
		panic(err)
	}
	return k.ID
}

// rawBucket returns a bucket's store keys and values in a vault file.
func rawBucket(t *testing.T, path, bucket string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.View(func(btx *bolt.Tx) error {
		b := btx.Bucket([]byte(bucket))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			out[string(k)] = bytes.Clone(v)
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func boltChange(t *testing.T, path string, fn func(*bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

// copyFile writes data to a new vault file and returns its path.
func copyFile(t *testing.T, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vault.db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func (f *tamperFixture) open(t *testing.T, path string) *Vault {
	t.Helper()
	v, err := Open(path, Options{Identities: []age.Identity{f.id}, Now: func() time.Time { return f.clock }})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return v
}

// wantTampered checks that err reports tampering in bucket.
func wantTampered(t *testing.T, what string, err error, bucket string) {
	t.Helper()
	var te *TamperError
	switch {
	case err == nil:
		t.Errorf("%s: accepted silently", what)
	case !errors.As(err, &te):
		t.Errorf("%s: %v, want a TamperError", what, err)
	case te.Bucket != bucket:
		t.Errorf("%s: reported in bucket %s, want %s (%v)", what, te.Bucket, bucket, err)
	}
}

// TestTamperRecords: for each sharded bucket, a sealed value replayed from
// the older copy, one removed, one added back after its removal, and a
// flipped bit in a key and in a value are each reported by a point read of
// that record and by Verify, naming the bucket.
func TestTamperRecords(t *testing.T) {
	f := buildTamperFixture(t)
	oldPath, newPath := copyFile(t, f.old), copyFile(t, f.newer)
	type tamper struct {
		name string
		key  []byte // the record's store key
		// change alters a copy of the newer file.
		change func(b *bolt.Bucket) error
	}
	exercised := map[string][]string{}
	for _, bucket := range shardedBuckets {
		oldRecs, newRecs := rawBucket(t, oldPath, bucket), rawBucket(t, newPath, bucket)
		var cases []tamper
		newKeys := slices.Sorted(func(yield func(string) bool) {
			for k := range newRecs {
				if !yield(k) {
					return
				}
			}
		})
		for _, k := range newKeys {
			if ov, ok := oldRecs[k]; ok && !bytes.Equal(ov, newRecs[k]) {
				cases = append(cases, tamper{"older value replayed", []byte(k), func(b *bolt.Bucket) error { return b.Put([]byte(k), ov) }})
				break
			}
		}
		for k, ov := range oldRecs {
			if _, ok := newRecs[k]; !ok {
				cases = append(cases, tamper{"removed record added back", []byte(k), func(b *bolt.Bucket) error { return b.Put([]byte(k), ov) }})
				break
			}
		}
		if len(newKeys) > 0 {
			k := newKeys[len(newKeys)/2]
			v := newRecs[k]
			cases = append(cases,
				tamper{"record removed", []byte(k), func(b *bolt.Bucket) error { return b.Delete([]byte(k)) }},
				tamper{"bit flipped in a value", []byte(k), func(b *bolt.Bucket) error {
					flipped := bytes.Clone(v)
					flipped[len(flipped)/2] ^= 0x04
					return b.Put([]byte(k), flipped)
				}},
				tamper{"bit flipped in a key", []byte(k), func(b *bolt.Bucket) error {
					moved := []byte(k)
					moved = append(bytes.Clone(moved[:len(moved)-1]), moved[len(moved)-1]^0x01)
					if err := b.Delete([]byte(k)); err != nil {
						return err
					}
					return b.Put(moved, v)
				}},
			)
		}
		for _, c := range cases {
			exercised[bucket] = append(exercised[bucket], c.name)
			t.Run(bucket+"/"+c.name, func(t *testing.T) {
				path := copyFile(t, f.newer)
				boltChange(t, path, func(btx *bolt.Tx) error { return c.change(btx.Bucket([]byte(bucket))) })
				v := f.open(t, path)
				// The point read a command or a server's reload would make.
				err := v.View(func(tx *Tx) error {
					_, err := tx.getJSON(bucket, c.key[2:], &rawJSON{})
					return err
				})
				wantTampered(t, "point read", err, bucket)
				_, err = v.Verify()
				wantTampered(t, "Verify", err, bucket)
				// A write to the same shard must not bless the change.
				err = v.Update(func(tx *Tx) error {
					return tx.putJSON(bucket, c.key[2:], "overwrite")
				})
				wantTampered(t, "write", err, bucket)
			})
		}
	}
	// The fixture must give every bucket that holds records its cases.
	for _, b := range []string{bucketIndex, bucketKeys, bucketClients, bucketUsage, bucketRevoked, bucketSigning, bucketChanges,
		bucketUsers, bucketGroups, bucketGrants, bucketGrantIndex, bucketCodes, bucketRefresh, bucketFamilies, bucketExpiry} {
		if len(exercised[b]) < 3 {
			t.Errorf("bucket %s: only %v exercised", b, exercised[b])
		}
	}
	if !slices.Contains(exercised[bucketKeys], "older value replayed") || !slices.Contains(exercised[bucketIndex], "removed record added back") {
		t.Errorf("the replay of a rotated key and of a removed secret were not exercised: %v", exercised)
	}
	// A user's old password, a used code made unused, a rotated refresh
	// token made current, a removed user or grant brought back.
	for _, c := range []struct{ bucket, what string }{
		{bucketUsers, "older value replayed"}, {bucketCodes, "older value replayed"}, {bucketRefresh, "older value replayed"},
		{bucketGrants, "older value replayed"}, {bucketGroups, "older value replayed"},
		{bucketUsers, "removed record added back"}, {bucketGrants, "removed record added back"},
		{bucketRefresh, "removed record added back"}, {bucketGrantIndex, "removed record added back"},
	} {
		if !slices.Contains(exercised[c.bucket], c.what) {
			t.Errorf("bucket %s: %q not exercised: %v", c.bucket, c.what, exercised[c.bucket])
		}
	}
}

// TestTamperTree: a node or root of the hash tree altered, or the head
// replaced by an older one, is reported.
func TestTamperTree(t *testing.T) {
	f := buildTamperFixture(t)
	oldPath := copyFile(t, f.old)
	oldMeta := rawBucket(t, oldPath, bucketMeta)
	tree := rawBucket(t, copyFile(t, f.newer), bucketTree)
	var nodeKeyOf string
	for k := range tree {
		if bytes.HasPrefix([]byte(k), []byte(bucketKeys+"\x00n")) {
			nodeKeyOf = k
		}
	}
	if nodeKeyOf == "" {
		t.Fatal("no node of the keys bucket in the tree")
	}
	for _, c := range []struct {
		name   string
		bucket string // where the change is reported
		change func(btx *bolt.Tx) error
	}{
		{"node altered", bucketKeys, func(btx *bolt.Tx) error {
			n := bytes.Clone(tree[nodeKeyOf])
			n[5] ^= 1
			return btx.Bucket([]byte(bucketTree)).Put([]byte(nodeKeyOf), n)
		}},
		{"root removed", bucketKeys, func(btx *bolt.Tx) error {
			return btx.Bucket([]byte(bucketTree)).Delete(rootKey(bucketKeys))
		}},
		{"head from the older copy", "", func(btx *bolt.Tx) error {
			return btx.Bucket([]byte(bucketMeta)).Put(metaHead, oldMeta[string(metaHead)])
		}},
		{"head removed", bucketMeta, func(btx *bolt.Tx) error {
			return btx.Bucket([]byte(bucketMeta)).Delete(metaHead)
		}},
		{"format changed back to 1", bucketMeta, func(btx *bolt.Tx) error {
			return btx.Bucket([]byte(bucketMeta)).Put(metaFormat, u64bytes(1))
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := copyFile(t, f.newer)
			boltChange(t, path, c.change)
			v, err := Open(path, Options{Identities: []age.Identity{f.id}})
			if err == nil {
				_, err = v.Verify()
			}
			if c.bucket == "" {
				// The older head is authentic; what gives it away is that the
				// records do not match it (some bucket's tree).
				if !errors.Is(err, ErrTampered) {
					t.Errorf("got %v, want ErrTampered", err)
				}
				return
			}
			if c.name == "format changed back to 1" {
				// Migrating again finds records where format 1 had none, or
				// the head's format tells.
				if err == nil {
					t.Error("accepted silently")
				}
				return
			}
			wantTampered(t, c.name, err, c.bucket)
		})
	}
}

// TestTamperAudit: the end of the audit log cut away, with or without its
// unsealed sequence set back, is reported; so is an entry removed inside.
func TestTamperAudit(t *testing.T) {
	f := buildTamperFixture(t)
	audit := rawBucket(t, copyFile(t, f.newer), bucketAudit)
	n := uint64(len(audit))
	for _, c := range []struct {
		name   string
		change func(b *bolt.Bucket) error
	}{
		{"last entry cut", func(b *bolt.Bucket) error { return b.Delete(seqKey(n)) }},
		{"last two entries cut and the sequence set back", func(b *bolt.Bucket) error {
			if err := b.Delete(seqKey(n)); err != nil {
				return err
			}
			if err := b.Delete(seqKey(n - 1)); err != nil {
				return err
			}
			return b.SetSequence(n - 2)
		}},
		{"an entry in the middle removed", func(b *bolt.Bucket) error { return b.Delete(seqKey(n / 2)) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := copyFile(t, f.newer)
			boltChange(t, path, func(btx *bolt.Tx) error { return c.change(btx.Bucket([]byte(bucketAudit))) })
			v := f.open(t, path)
			if _, err := v.Verify(); !errors.Is(err, ErrAuditChain) {
				t.Errorf("Verify = %v, want ErrAuditChain", err)
			}
			// The next change either refuses to extend a log that does not
			// end where the head says, or extends it and the gap stays
			// visible to Verify.
			err := v.Update(func(tx *Tx) error { return tx.Audit("test.write", "", "") })
			if err == nil {
				if _, err := v.Verify(); !errors.Is(err, ErrAuditChain) {
					t.Errorf("after a further write, Verify = %v, want ErrAuditChain", err)
				}
			} else if !errors.Is(err, ErrTampered) {
				t.Errorf("write after the cut = %v, want ErrTampered", err)
			}
		})
	}
}

// TestTamperMetaPages flips a bit in bbolt's newest meta page, which makes
// bbolt fall back to the previous transaction: a rollback by one commit,
// refused by a machine that saw the newer state. Both meta pages flipped:
// not a vault.
func TestTamperMetaPages(t *testing.T) {
	f := buildTamperFixture(t)
	stateDir := t.TempDir()
	path := copyFile(t, f.newer)
	opts := Options{Identities: []age.Identity{f.id}, StateDir: stateDir}
	// This machine sees the newest state once.
	if _, err := Open(path, opts); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// A meta page: the page header (16 bytes), then magic, version, page
	// size, flags, root bucket (16), freelist, pgid, txid, checksum.
	const pageSize, txidAt, checksumAt = 4096, 16 + 16 + 16 + 8 + 8, 16 + 16 + 16 + 8 + 8 + 8
	newest := 0
	if binary.LittleEndian.Uint64(data[pageSize+txidAt:]) > binary.LittleEndian.Uint64(data[txidAt:]) {
		newest = 1
	}
	one := bytes.Clone(data)
	one[newest*pageSize+checksumAt] ^= 0x10
	if err := os.WriteFile(path, one, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Open(path, opts)
	if !errors.Is(err, ErrRolledBack) {
		t.Errorf("newest meta page flipped: Open = %v, want ErrRolledBack", err)
	}
	both := bytes.Clone(one)
	both[(1-newest)*pageSize+checksumAt] ^= 0x10
	if err := os.WriteFile(path, both, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, opts); !errors.Is(err, ErrNotVault) {
		t.Errorf("both meta pages flipped: Open = %v, want ErrNotVault", err)
	}
}

// TestRollback: an older copy of the file put in place is refused by a
// process that has the vault open and by a new process on the same
// machine; it is accepted with AcceptRollback, after which it is the newest.
func TestRollback(t *testing.T) {
	f := buildTamperFixture(t)
	stateDir := t.TempDir()
	path := copyFile(t, f.newer)
	opts := Options{Identities: []age.Identity{f.id}, StateDir: stateDir}
	running, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := running.Generation(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".tmp", f.old, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
	var rb *RollbackError
	if _, err := running.Generation(); !errors.As(err, &rb) {
		t.Fatalf("running process: %v, want a RollbackError", err)
	}
	if rb.Found.Revision >= rb.Seen.Revision {
		t.Errorf("RollbackError says found %d, seen %d", rb.Found.Revision, rb.Seen.Revision)
	}
	if _, err := Open(path, opts); !errors.Is(err, ErrRolledBack) {
		t.Errorf("new process: Open = %v, want ErrRolledBack", err)
	}
	// Another machine (no remembered state) opens it: it has nothing to
	// compare with, as documented.
	if _, err := Open(path, Options{Identities: []age.Identity{f.id}, StateDir: t.TempDir()}); err != nil {
		t.Errorf("another machine: %v", err)
	}
	accept := opts
	accept.AcceptRollback = true
	if _, err := Open(path, accept); err != nil {
		t.Fatalf("AcceptRollback: %v", err)
	}
	v, err := Open(path, opts)
	if err != nil {
		t.Fatalf("after accepting: %v", err)
	}
	// One write after the restore brings the vault to the revision the
	// newer copy has, with another head: that copy, put back now, is a
	// fork and is refused as well.
	if err := v.Update(func(tx *Tx) error { return tx.Audit("test.after-restore", "", "") }); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, f.newer, 0o600); err != nil {
		t.Fatal(err)
	}
	var fork *RollbackError
	if _, err := Open(path, opts); !errors.As(err, &fork) || fork.Found.Revision != fork.Seen.Revision {
		t.Errorf("forked copy: Open = %v, want a RollbackError at the same revision", err)
	}
}

// TestReadAfterWriteInOneTransaction: a transaction that writes and then
// reads a whole bucket sees its own writes, not tampering.
func TestReadAfterWriteInOneTransaction(t *testing.T) {
	f := buildTamperFixture(t)
	v := f.open(t, copyFile(t, f.newer))
	err := v.Update(func(tx *Tx) error {
		secret, err := apikey.Generate("km")
		if err != nil {
			return err
		}
		if err := tx.CreateKey(&Key{Credential: Credential{Name: "fresh"}}, secret); err != nil {
			return err
		}
		keys, err := tx.Keys()
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(keys, func(k *Key) bool { return k.Name == "fresh" }) {
			t.Error("the new key is not listed in its own transaction")
		}
		_, err = tx.Revocations()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentMigration: two processes that open a format-1 vault at
// once both end up with it migrated, once.
func TestConcurrentMigration(t *testing.T) {
	path, ids, _ := format1Copy(t)
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := Open(path, Options{Identities: ids, Now: format1Clock})
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Errorf("Open: %v", err)
		}
	}
	v, err := Open(path, Options{Identities: ids, Now: format1Clock})
	if err != nil {
		t.Fatal(err)
	}
	if n := countMigrations(t, v); n != 1 {
		t.Errorf("%d migrations logged", n)
	}
}
