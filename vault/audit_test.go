package vault_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/keymint/keymint/vault"
)

// auditVault makes a vault with a history of changes, one a minute.
func auditVault(t *testing.T) *testVault {
	t.Helper()
	tv := newTestVault(t)
	steps := []func(tx *vault.Tx) error{
		func(tx *vault.Tx) error {
			return tx.CreateKey(&vault.Key{Credential: vault.Credential{Name: "k"}}, newSecret(t, "km"))
		},
		func(tx *vault.Tx) error {
			return tx.CreateClient(&vault.Client{Credential: vault.Credential{Name: "c"}}, newSecret(t, "kmcs"))
		},
		func(tx *vault.Tx) error { _, err := tx.RenameKey("k", "k2"); return err },
		func(tx *vault.Tx) error { _, err := tx.RotateKey("k2", newSecret(t, "km"), time.Hour); return err },
		func(tx *vault.Tx) error {
			c, err := tx.Client("c")
			if err != nil {
				return err
			}
			c.Description = "changed"
			return tx.SaveClient(c)
		},
		func(tx *vault.Tx) error { _, err := tx.RotateClient("c", newSecret(t, "kmcs"), 0); return err },
		func(tx *vault.Tx) error { _, err := tx.DeleteKeys("k2"); return err },
	}
	for _, step := range steps {
		tv.Clock.Advance(time.Minute)
		tv.update(t, step)
	}
	return tv
}

func TestAuditEveryChange(t *testing.T) {
	tv := auditVault(t)
	// Reads, uses and failed changes add nothing.
	tv.update(t, func(tx *vault.Tx) error { return tx.TouchClient("c") })
	tv.view(t, func(tx *vault.Tx) error { _, err := tx.Clients(); return err })
	if err := tv.Update(func(tx *vault.Tx) error { _, err := tx.DeleteClients("c", "missing"); return err }); !errors.Is(err, vault.ErrNotFound) {
		t.Fatalf("failed delete: %v", err)
	}

	var log []vault.AuditEntry
	tv.view(t, func(tx *vault.Tx) error {
		var err error
		log, err = tx.AuditLog()
		return err
	})
	var actions []string
	for i, e := range log {
		actions = append(actions, e.Action)
		if e.Seq != uint64(i+1) {
			t.Errorf("entry %d has seq %d", i, e.Seq)
		}
		if want := epoch.Add(time.Duration(i) * time.Minute); !e.Time.Equal(want) {
			t.Errorf("entry %d (%s) at %v, want %v", e.Seq, e.Action, e.Time, want)
		}
		if e.Actor != "tester@host" {
			t.Errorf("entry %d actor %q", e.Seq, e.Actor)
		}
		if len(e.Hash) != 32 || (i > 0 && !slices.Equal(e.Prev, log[i-1].Hash)) || (i == 0 && e.Prev != nil) {
			t.Errorf("entry %d: bad chain link", e.Seq)
		}
	}
	want := []string{
		"vault.init", "key.create", "client.create", "key.rename", "key.rotate",
		"client.update", "client.rotate", "key.delete",
	}
	if !slices.Equal(actions, want) {
		t.Errorf("audit actions\n got %q\nwant %q", actions, want)
	}
	if e := log[3]; e.Detail != "k -> k2" || e.ID == "" {
		t.Errorf("rename entry = %+v", e)
	}
}

func TestAuditTampered(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(b *bolt.Bucket) error
		want   error
	}{
		{
			name:   "middle entry deleted",
			tamper: func(b *bolt.Bucket) error { return b.Delete([]byte(seqKey(4))) },
			want:   vault.ErrAuditChain,
		},
		{
			name:   "first entry deleted",
			tamper: func(b *bolt.Bucket) error { return b.Delete([]byte(seqKey(1))) },
			want:   vault.ErrAuditChain,
		},
		{
			name:   "last entry deleted",
			tamper: func(b *bolt.Bucket) error { return b.Delete([]byte(seqKey(8))) },
			want:   vault.ErrAuditChain,
		},
		{
			name: "last two entries deleted",
			tamper: func(b *bolt.Bucket) error {
				if err := b.Delete([]byte(seqKey(8))); err != nil {
					return err
				}
				return b.Delete([]byte(seqKey(7)))
			},
			want: vault.ErrAuditChain,
		},
		{
			// The bucket's sequence rewound with the tail, as format 1
			// could not tell: the head still records where the log ends.
			name: "last entry deleted and the sequence rewound",
			tamper: func(b *bolt.Bucket) error {
				if err := b.Delete([]byte(seqKey(8))); err != nil {
					return err
				}
				return b.SetSequence(7)
			},
			want: vault.ErrAuditChain,
		},
		{
			// A sealed entry copied over another does not open: the
			// record's key is part of its associated data.
			name: "entry copied over another",
			tamper: func(b *bolt.Bucket) error {
				return b.Put([]byte(seqKey(5)), append([]byte(nil), b.Get([]byte(seqKey(4)))...))
			},
			want: vault.ErrCorrupt,
		},
		{
			// Moved to the next key and the one after it gone: each record
			// is still bound to its own key.
			name: "entry moved",
			tamper: func(b *bolt.Bucket) error {
				v := append([]byte(nil), b.Get([]byte(seqKey(8)))...)
				if err := b.Delete([]byte(seqKey(8))); err != nil {
					return err
				}
				return b.Put([]byte(seqKey(9)), v)
			},
			want: vault.ErrCorrupt,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tv := auditVault(t)
			tv.boltUpdate(t, func(btx *bolt.Tx) error { return tt.tamper(btx.Bucket([]byte("audit"))) })
			err := tv.View(func(tx *vault.Tx) error {
				_, err := tx.AuditLog()
				return err
			})
			if !errors.Is(err, tt.want) {
				t.Fatalf("AuditLog = %v, want %v", err, tt.want)
			}
			if tt.want == vault.ErrAuditChain && errors.Is(err, vault.ErrCorrupt) {
				t.Errorf("AuditLog = %v: a removed entry is not a damaged record", err)
			}
		})
	}
}

// TestAuditLogPartial: AuditLog returns the entries that verified before
// the break along with the error.
func TestAuditLogPartial(t *testing.T) {
	tv := auditVault(t)
	tv.boltUpdate(t, func(btx *bolt.Tx) error { return btx.Bucket([]byte("audit")).Delete([]byte(seqKey(4))) })
	var got []vault.AuditEntry
	var logErr error
	tv.view(t, func(tx *vault.Tx) error {
		got, logErr = tx.AuditLog()
		return nil
	})
	if !errors.Is(logErr, vault.ErrAuditChain) {
		t.Errorf("AuditLog = %v, want ErrAuditChain", logErr)
	}
	if len(got) != 3 {
		t.Errorf("AuditLog returned %d entries before the gap, want 3", len(got))
	}
}
