package vault

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	bolt "go.etcd.io/bbolt"

	"github.com/keymint/keymint/apikey"
)

// format1Secrets is testdata/format1/secrets.json: what the format-1 vault
// beside it was made with (by keymint at commit 0f12094, through its CLI and
// server), to check after the migration.
type format1Secrets struct {
	KeyAlpha, KeyAlphaID, KeyBetaOld, KeyBetaNew, KeyGone string
	ClientErpID, ClientErpSecret                          string
	ClientOldID, ClientOldRetired, ClientOldSecret        string
	TokenRevoked, TokenLive                               string
}

func (s *format1Secrets) UnmarshalJSON(b []byte) error {
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*s = format1Secrets{
		KeyAlpha: m["key_alpha"], KeyAlphaID: m["key_alpha_id"], KeyBetaOld: m["key_beta_old"], KeyBetaNew: m["key_beta_new"],
		KeyGone: m["key_gone"], ClientErpID: m["client_erp_id"], ClientErpSecret: m["client_erp_secret"],
		ClientOldID: m["client_old_id"], ClientOldRetired: m["client_old_retired"], ClientOldSecret: m["client_old_secret"],
		TokenRevoked: m["token_revoked"], TokenLive: m["token_live"],
	}
	return nil
}

// format1Copy copies the committed format-1 vault and its identity into a
// temporary directory (git does not keep file modes) and returns the
// vault's path, the identity and the secrets.
func format1Copy(t *testing.T) (string, []age.Identity, format1Secrets) {
	t.Helper()
	var s format1Secrets
	path, ids := fixtureCopy(t, "format1", &s)
	return path, ids, s
}

// fixtureCopy copies testdata/<dir>'s vault.db into a temporary directory,
// and reads its identity.txt, and its secrets.json into secrets.
func fixtureCopy(t *testing.T, dir string, secrets any) (string, []age.Identity) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", dir, "vault.db"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "vault.db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	idf, err := os.Open(filepath.Join("testdata", dir, "identity.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer idf.Close()
	ids, err := ParseIdentities(idf, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join("testdata", dir, "secrets.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, secrets); err != nil {
		t.Fatal(err)
	}
	return path, ids
}

// jwtID reads a token's jti without checking it: the test only needs to
// know which revocation to look for.
func jwtID(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		JTI string `json:"jti"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	return c.JTI
}

// The format-1 vault was made on 2026-12-01 a little before 00:49 UTC.
var format1Clock = func() time.Time { return time.Date(2026, 12, 1, 0, 50, 0, 0, time.UTC) }

// TestMigrateFormat1 opens the committed format-1 vault and checks that
// every key, secret, client, signing key, counter, revocation, last use and
// audit entry made under format 1 still works after migrating through
// format 2 to the current format.
func TestMigrateFormat1(t *testing.T) {
	path, ids, s := format1Copy(t)
	v, err := Open(path, Options{Identities: ids, Now: format1Clock, Actor: "migration-test"})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if got := rawBucket(t, path, bucketMeta)[string(metaFormat)]; u64(got) != FormatVersion {
		t.Errorf("format after migration = %d, want %d", u64(got), FormatVersion)
	}
	if _, ok := rawBucket(t, path, bucketMeta)["generation"]; ok {
		t.Error("format 1's clear generation is still in meta")
	}
	r, err := v.Verify()
	if err != nil {
		t.Fatalf("Verify after migration: %v", err)
	}
	if r.Records[bucketKeys] != 2 || r.Records[bucketClients] != 2 || r.Records[bucketSigning] != 2 || r.Records[bucketRevoked] != 1 {
		t.Errorf("records after migration: %v", r.Records)
	}
	err = v.View(func(tx *Tx) error {
		// API keys: alpha, both of beta's secrets (the old one in its grace
		// window), not the removed key.
		for _, c := range []struct{ secret, name string }{{s.KeyAlpha, "alpha"}, {s.KeyBetaOld, "beta"}, {s.KeyBetaNew, "beta"}} {
			k, err := tx.KeyBySecret(c.secret)
			if err != nil || k.Name != c.name {
				t.Errorf("key secret of %s: %v, %v", c.name, k, err)
			}
		}
		if _, err := tx.KeyBySecret(s.KeyGone); !errors.Is(err, ErrNotFound) {
			t.Errorf("removed key: %v, want ErrNotFound", err)
		}
		alpha, err := tx.Key("alpha")
		if err != nil {
			return err
		}
		if alpha.ID != s.KeyAlphaID || alpha.LastUsedAt == nil || len(alpha.Limits) != 1 || alpha.Scopes[0] != "invoices:read" {
			t.Errorf("alpha after migration: %+v", alpha)
		}
		// Clients: erp's secret, old's new secret but not its retired one.
		if c, err := tx.ClientBySecret(s.ClientErpSecret); err != nil || c.ID != s.ClientErpID {
			t.Errorf("erp: %+v, %v", c, err)
		}
		if c, err := tx.Client(s.ClientErpID); err != nil || c.LastUsedAt == nil {
			t.Errorf("erp: %+v, %v", c, err)
		}
		if c, err := tx.ClientBySecret(s.ClientOldSecret); err != nil || c.ID != s.ClientOldID {
			t.Errorf("old's new secret: %v, %v", c, err)
		}
		if _, err := tx.ClientBySecret(s.ClientOldRetired); !errors.Is(err, ErrNotFound) {
			t.Errorf("old's retired secret: %v, want ErrNotFound", err)
		}
		if _, err := tx.Client("erp"); err != nil {
			t.Errorf("client by name: %v", err)
		}
		// Counters: alpha verified twice today, erp one token and a top-up.
		if c, err := tx.Usage(s.KeyAlphaID, "2026-12-01"); err != nil || c.Used != 2 {
			t.Errorf("alpha's uses today: %+v, %v", c, err)
		}
		if c, err := tx.Usage(s.ClientErpID, "2026-12"); err != nil || c.Used < 1 || c.Extra != 100 {
			t.Errorf("erp's uses this month: %+v, %v", c, err)
		}
		// The revocation, and no other.
		if ok, err := tx.Revoked(jwtID(t, s.TokenRevoked)); err != nil || !ok {
			t.Errorf("revoked token: %v, %v", ok, err)
		}
		if ok, err := tx.Revoked(jwtID(t, s.TokenLive)); err != nil || ok {
			t.Errorf("live token: %v, %v", ok, err)
		}
		if _, err := tx.ActiveSigningKey(); err != nil {
			t.Errorf("active signing key: %v", err)
		}
		log, err := tx.AuditLog()
		if err != nil {
			return err
		}
		if last := log[len(log)-1]; last.Action != "vault.migrate" || last.Detail != fmt.Sprintf("format 1 -> %d", FormatVersion) || last.Actor != "migration-test" {
			t.Errorf("last audit entry: %+v", last)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Written to under the current format, and opened again: no second
	// migration.
	err = v.Update(func(tx *Tx) error {
		secret, err := apikey.Generate("km")
		if err != nil {
			return err
		}
		_, err = tx.RotateKey("alpha", secret, 0)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	v2, err := Open(path, Options{Identities: ids, Now: format1Clock})
	if err != nil {
		t.Fatal(err)
	}
	if n := countMigrations(t, v2); n != 1 {
		t.Errorf("%d migrations in the audit log", n)
	}
	// Format 3 entered the revocation in its expiry queue: once its token
	// has expired, the next revocation removes it.
	checkRevocationPruned(t, path, ids, jwtID(t, s.TokenRevoked), format1Clock().Add(2*time.Hour))
}

// checkRevocationPruned opens a migrated vault at a time after the token
// whose jti is jti expired, revokes another token, and checks that the
// revocation of jti was removed on the way.
func checkRevocationPruned(t *testing.T, path string, ids []age.Identity, jti string, later time.Time) {
	t.Helper()
	v, err := Open(path, Options{Identities: ids, Now: func() time.Time { return later }})
	if err != nil {
		t.Fatal(err)
	}
	err = v.Update(func(tx *Tx) error {
		return tx.Revoke(Revocation{JTI: "after-migration", ClientID: "cl_x", ExpiresAt: later.Add(time.Hour)})
	})
	if err != nil {
		t.Fatal(err)
	}
	err = v.View(func(tx *Tx) error {
		if ok, err := tx.Revoked(jti); err != nil || ok {
			t.Errorf("the expired revocation after a later one: %v, %v; want it removed", ok, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// countMigrations counts the migrations in a vault's audit log.
func countMigrations(t *testing.T, v *Vault) int {
	t.Helper()
	n := 0
	if err := v.View(func(tx *Tx) error {
		log, err := tx.AuditLog()
		for _, e := range log {
			if e.Action == "vault.migrate" {
				n++
			}
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestMigrateFormat1Damaged: a format-1 vault with a damaged record is not
// migrated, and the file is left exactly as it was: the migration is one
// transaction.
func TestMigrateFormat1Damaged(t *testing.T) {
	path, ids, _ := format1Copy(t)
	boltChange(t, path, func(btx *bolt.Tx) error {
		b := btx.Bucket([]byte(bucketKeys))
		k, v := b.Cursor().Last()
		v = bytes.Clone(v)
		v[len(v)/2] ^= 1
		return b.Put(bytes.Clone(k), v)
	})
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, Options{Identities: ids, Now: format1Clock}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Open = %v, want ErrCorrupt", err)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("a failed migration changed the file")
	}
}
