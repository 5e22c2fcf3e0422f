package vault_test

import (
	"bytes"
	"encoding/binary"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/keymint/keymint/vault"
)

// TestNoPlaintextInFile writes credentials with distinctive contents and
// finds none of it in the file, whatever the page it landed on.
func TestNoPlaintextInFile(t *testing.T) {
	tv := newTestVault(t, func(co *vault.CreateOptions) {
		co.Actor = "actor-pangolin-5521@host-walrus-9034"
	})
	var secrets []string
	for range 6 {
		secrets = append(secrets, newSecret(t, "km"), newSecret(t, "kmcs"))
	}
	tv.update(t, func(tx *vault.Tx) error {
		for i, s := range []string{"zephyr-quokka-7731", "zephyr-quokka-7732"} {
			k := &vault.Key{Credential: vault.Credential{Name: s, Scopes: []string{"ledger:obliterate-4471", "vellum-grommet-2219"}}}
			if err := tx.CreateKey(k, secrets[2*i]); err != nil {
				return err
			}
		}
		c := &vault.Client{
			Credential:   vault.Credential{Name: "nebula-axolotl-3310", Scopes: []string{"harpsichord-tundra-8812"}},
			GrantTypes:   []string{"authorization_code"},
			RedirectURIs: []string{"https://umbrella-xylophone-6620.example/callback"},
			Audience:     []string{"https://audience-kumquat-1187.example"},
			Description:  "marmalade-telescope-5078 for the team",
			URL:          "https://homepage-gazebo-2294.example",
			PolicyURL:    "https://policy-lantern-4406.example",
			TOSURL:       "https://terms-origami-9951.example",
		}
		return tx.CreateClient(c, secrets[1])
	})
	// Rename, rotate and delete, so old versions sit in freed pages too.
	tv.update(t, func(tx *vault.Tx) error {
		if _, err := tx.RenameKey("zephyr-quokka-7731", "tapioca-meridian-6630"); err != nil {
			return err
		}
		if _, err := tx.RotateKey("tapioca-meridian-6630", secrets[4], time.Hour); err != nil {
			return err
		}
		if _, err := tx.RotateClient("nebula-axolotl-3310", secrets[3], time.Hour); err != nil {
			return err
		}
		_, err := tx.DeleteKeys("zephyr-quokka-7732")
		return err
	})

	raw, err := os.ReadFile(tv.Path)
	if err != nil {
		t.Fatal(err)
	}
	needles := []string{
		"zephyr-quokka", "tapioca-meridian", "nebula-axolotl", "ledger:obliterate", "vellum-grommet",
		"harpsichord-tundra", "umbrella-xylophone", "audience-kumquat", "marmalade-telescope",
		"homepage-gazebo", "policy-lantern", "terms-origami", "actor-pangolin", "host-walrus",
		"client_credentials", "authorization_code", "invoices", "scopes", // field names and values
	}
	for _, s := range secrets[:5] {
		_, body, _ := strings.Cut(s, "_")
		needles = append(needles, s, body[:20], body[len(body)-20:])
	}
	for _, n := range needles {
		if bytes.Contains(raw, []byte(n)) {
			t.Errorf("vault file contains %q in the clear", n)
		}
	}
	// A sanity check that the search can find something: the clear meta.
	if !bytes.Contains(raw, []byte("data_key")) {
		t.Error("meta key data_key not found; is the search broken?")
	}
}

// TestRecordMoved copies sealed values where they do not belong: to another
// key of the same bucket, to the same key of another bucket, and between
// index entries. Each must be refused, never read: by the hash tree under
// the head (ErrTampered, naming the bucket changed) or, where no tree covers
// the bucket (audit), by the seal (ErrCorrupt). That the seal alone binds a
// value to its bucket and key is FuzzOpenRecord's seed corpus.
func TestRecordMoved(t *testing.T) {
	tv := newTestVault(t)
	var a, b *vault.Key
	var cl *vault.Client
	sa := newSecret(t, "km")
	tv.update(t, func(tx *vault.Tx) error {
		a = &vault.Key{Credential: vault.Credential{Name: "a", Scopes: []string{"admin"}}}
		b = &vault.Key{Credential: vault.Credential{Name: "b", Scopes: []string{"read"}}}
		cl = &vault.Client{Credential: vault.Credential{Name: "c"}}
		if err := tx.CreateKey(a, sa); err != nil {
			return err
		}
		if err := tx.CreateKey(b, newSecret(t, "km")); err != nil {
			return err
		}
		return tx.CreateClient(cl, newSecret(t, "kmcs"))
	})

	tests := []struct {
		name                string
		fromBucket, fromKey string
		toBucket, toKey     string
		read                func(tx *vault.Tx) error
	}{
		{
			name:       "key record over another key",
			fromBucket: "keys", fromKey: a.ID, toBucket: "keys", toKey: b.ID,
			read: func(tx *vault.Tx) error { _, err := tx.Key(b.ID); return err },
		},
		{
			name:       "key record listed",
			fromBucket: "keys", fromKey: a.ID, toBucket: "keys", toKey: b.ID,
			read: func(tx *vault.Tx) error { _, err := tx.Keys(); return err },
		},
		{
			name:       "key record read by name",
			fromBucket: "keys", fromKey: a.ID, toBucket: "keys", toKey: b.ID,
			read: func(tx *vault.Tx) error { _, err := tx.Key("b"); return err },
		},
		{
			name:       "client record over a key",
			fromBucket: "clients", fromKey: cl.ID, toBucket: "keys", toKey: b.ID,
			read: func(tx *vault.Tx) error { _, err := tx.Key(b.ID); return err },
		},
		{
			name:       "key record into the clients bucket",
			fromBucket: "keys", fromKey: a.ID, toBucket: "clients", toKey: a.ID,
			read: func(tx *vault.Tx) error { _, err := tx.Clients(); return err },
		},
		{
			name:       "settings into the keys bucket",
			fromBucket: "settings", fromKey: "vault", toBucket: "keys", toKey: "vault",
			read: func(tx *vault.Tx) error { _, err := tx.Keys(); return err },
		},
		{
			name:       "audit entry over another",
			fromBucket: "audit", fromKey: seqKey(2), toBucket: "audit", toKey: seqKey(3),
			read: func(tx *vault.Tx) error { _, err := tx.AuditLog(); return err },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := rawLookup(t, tv, tt.toBucket, []byte(tt.toKey)) // nil if none
			moved := rawGet(t, tv, tt.fromBucket, []byte(tt.fromKey))
			tv.rawPut(t, tt.toBucket, []byte(tt.toKey), moved)
			err := tv.View(tt.read)
			if !detected(err) {
				t.Errorf("got %v, want ErrTampered or ErrCorrupt", err)
			}
			if b := tamperedBucket(err); b != "" && b != tt.toBucket {
				t.Errorf("tampering reported in bucket %s, want %s", b, tt.toBucket)
			}
			// Put it back (or remove it) for the next case: the same state
			// as before, which reads again.
			tv.rawPut(t, tt.toBucket, []byte(tt.toKey), orig)
			if err := tv.View(tt.read); err != nil {
				t.Errorf("after putting it back: %v", err)
			}
		})
	}

	// The name index: the HMAC keys are unknown to the test, so it rotates
	// every index value one place (at the store keys as they are, shard
	// included), giving each entry another's, and expects every lookup to
	// fail rather than return the wrong record.
	t.Run("index entries swapped", func(t *testing.T) {
		var keys [][]byte
		var vals [][]byte
		db, err := bolt.Open(tv.Path, 0o600, &bolt.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		db.View(func(btx *bolt.Tx) error {
			return btx.Bucket([]byte("index")).ForEach(func(k, v []byte) error {
				keys = append(keys, bytes.Clone(k))
				vals = append(vals, bytes.Clone(v))
				return nil
			})
		})
		db.Close()
		// Rotate every value one place: each entry now holds another's.
		tv.boltUpdate(t, func(btx *bolt.Tx) error {
			for i, k := range keys {
				if err := btx.Bucket([]byte("index")).Put(k, vals[(i+1)%len(vals)]); err != nil {
					return err
				}
			}
			return nil
		})
		for _, read := range []func(tx *vault.Tx) error{
			func(tx *vault.Tx) error { _, err := tx.Key("a"); return err },
			func(tx *vault.Tx) error { _, err := tx.Key("b"); return err },
			func(tx *vault.Tx) error { _, err := tx.Client("c"); return err },
			func(tx *vault.Tx) error { _, err := tx.KeyBySecret(sa); return err },
		} {
			err := tv.View(read)
			if !detected(err) {
				t.Errorf("lookup through a swapped index entry = %v, want ErrTampered or ErrCorrupt", err)
			}
			if b := tamperedBucket(err); b != "" && b != "index" {
				t.Errorf("tampering reported in bucket %s, want index", b)
			}
		}
		tv.boltUpdate(t, func(btx *bolt.Tx) error {
			for i, k := range keys {
				if err := btx.Bucket([]byte("index")).Put(k, vals[i]); err != nil {
					return err
				}
			}
			return nil
		})
	})

	// Restored, the vault reads again.
	tv.view(t, func(tx *vault.Tx) error {
		_, err := tx.Keys()
		return err
	})
	tv.Tampered = false
}

// TestRecordFromOtherVault copies a sealed value from one vault into
// another, at the same bucket and key.
func TestRecordFromOtherVault(t *testing.T) {
	v1, v2 := newTestVault(t), newTestVault(t)
	// The same id in both vaults, so only the vault id tells them apart.
	const id = "key_0123456789abcdef"
	for _, tv := range []*testVault{v1, v2} {
		tv.update(t, func(tx *vault.Tx) error {
			return tx.CreateKey(&vault.Key{Credential: vault.Credential{ID: id, Name: "k"}}, newSecret(t, "km"))
		})
	}
	for _, c := range []struct {
		bucket, key string
		read        func(tx *vault.Tx) error
	}{
		{"keys", id, func(tx *vault.Tx) error { _, err := tx.Key(id); return err }},
		{"settings", "vault", func(tx *vault.Tx) error { _, err := tx.Settings(); return err }},
		{"audit", seqKey(1), func(tx *vault.Tx) error { _, err := tx.AuditLog(); return err }},
	} {
		if err := v1.View(c.read); err != nil {
			t.Fatalf("%s/%q before the copy: %v", c.bucket, c.key, err)
		}
		// From v2's store key to v1's: each vault shards with its own key.
		foreign := rawGet(t, v2, c.bucket, []byte(c.key))
		v1.rawPut(t, c.bucket, []byte(c.key), foreign)
		if err := v1.View(c.read); !detected(err) {
			t.Errorf("%s/%q from another vault: got %v, want ErrTampered or ErrCorrupt", c.bucket, c.key, err)
		}
	}
}

// TestFlippedByte damages one sealed value at several places and lengths.
func TestFlippedByte(t *testing.T) {
	tv := newTestVault(t)
	k := &vault.Key{Credential: vault.Credential{Name: "k"}}
	secret := newSecret(t, "km")
	tv.update(t, func(tx *vault.Tx) error { return tx.CreateKey(k, secret) })
	orig := rawGet(t, tv, "keys", []byte(k.ID))

	type damage struct {
		name string
		val  []byte
	}
	var cases []damage
	for _, i := range []int{0, 1, 12, 24, 25, len(orig) / 2, len(orig) - 17, len(orig) - 1} {
		v := bytes.Clone(orig)
		v[i] ^= 0x01
		cases = append(cases, damage{name: "flip bit at " + itoa(i), val: v})
	}
	for _, n := range []int{1, 24, 25, 40, 41, len(orig) - 1} {
		cases = append(cases, damage{name: "truncated to " + itoa(n), val: bytes.Clone(orig[:n])})
	}
	cases = append(cases,
		damage{"version 0", append([]byte{0}, orig[1:]...)},
		damage{"version 2", append([]byte{2}, orig[1:]...)},
		damage{"extra byte", append(bytes.Clone(orig), 0)},
		damage{"all zero", make([]byte, len(orig))},
		damage{"empty", []byte{}},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tv.rawPut(t, "keys", []byte(k.ID), c.val)
			for _, read := range []func(tx *vault.Tx) error{
				func(tx *vault.Tx) error { _, err := tx.Key(k.ID); return err },
				func(tx *vault.Tx) error { _, err := tx.Key("k"); return err },
				func(tx *vault.Tx) error { _, err := tx.Keys(); return err },
				func(tx *vault.Tx) error { _, err := tx.KeyBySecret(secret); return err },
			} {
				err := tv.View(read)
				if !detected(err) {
					t.Errorf("got %v, want ErrTampered or ErrCorrupt", err)
				}
				if b := tamperedBucket(err); b != "" && b != "keys" {
					t.Errorf("tampering reported in bucket %s, want keys", b)
				}
			}
			// A change that reads the damaged record fails and changes nothing.
			before := fileSum(t, tv.Path)
			if err := tv.Update(func(tx *vault.Tx) error { _, err := tx.RotateKey("k", newSecret(t, "km"), 0); return err }); !detected(err) {
				t.Errorf("Update: got %v, want ErrTampered or ErrCorrupt", err)
			}
			if fileSum(t, tv.Path) != before {
				t.Error("failed Update changed the file")
			}
		})
	}
	tv.rawPut(t, "keys", []byte(k.ID), orig)
	tv.Tampered = false
}

func seqKey(seq uint64) string { return string(binary.BigEndian.AppendUint64(nil, seq)) }

func itoa(i int) string { return strconv.Itoa(i) }
