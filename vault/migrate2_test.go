package vault

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/keymint/keymint/apikey"
)

// format2Secrets is testdata/format2/secrets.json: what the format-2 vault
// beside it was made with, by keymint at commit 92b126e through its CLI and
// `keymint serve` (POST /revoke), with testdata/format2/make.sh.
type format2Secrets struct {
	KeyAlpha, KeyAlphaID, KeyBetaOld, KeyBetaNew, KeyGone string
	ClientErpID, ClientErpSecret                          string
	ClientPortalID, ClientPortalSecret                    string
	ClientOldID, ClientOldRetired, ClientOldSecret        string
	TokenRevoked, TokenLive                               string
}

func (s *format2Secrets) UnmarshalJSON(b []byte) error {
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*s = format2Secrets{
		KeyAlpha: m["key_alpha"], KeyAlphaID: m["key_alpha_id"], KeyBetaOld: m["key_beta_old"], KeyBetaNew: m["key_beta_new"],
		KeyGone: m["key_gone"], ClientErpID: m["client_erp_id"], ClientErpSecret: m["client_erp_secret"],
		ClientPortalID: m["client_portal_id"], ClientPortalSecret: m["client_portal_secret"],
		ClientOldID: m["client_old_id"], ClientOldRetired: m["client_old_retired"], ClientOldSecret: m["client_old_secret"],
		TokenRevoked: m["token_revoked"], TokenLive: m["token_live"],
	}
	return nil
}

// The format-2 vault was made on 2026-12-01 at 03:20 UTC; its access
// tokens expire an hour later.
var format2Clock = func() time.Time { return time.Date(2026, 12, 1, 3, 30, 0, 0, time.UTC) }

// format2Generation is the fixture's generation when it was made (`keymint
// vault verify` said "revision 17 (generation 12)"): migrating changes no
// record a server caches, so it stays.
const format2Generation = 12

// TestMigrateFormat2 opens the committed format-2 vault and checks that
// every key, secret, client (an authorization_code one with its redirect
// URIs and links among them), signing key, limit, counter, top-up, last use,
// revocation and audit entry survives the migration to format 3, and that
// format 3's records then work on it.
func TestMigrateFormat2(t *testing.T) {
	var s format2Secrets
	path, ids := fixtureCopy(t, "format2", &s)
	v, err := Open(path, Options{Identities: ids, Now: format2Clock, Actor: "migration-test"})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if got := rawBucket(t, path, bucketMeta)[string(metaFormat)]; u64(got) != FormatVersion {
		t.Errorf("format after migration = %d, want %d", u64(got), FormatVersion)
	}
	r, err := v.Verify()
	if err != nil {
		t.Fatalf("Verify after migration: %v", err)
	}
	// The expiry queue of revocations: its cursor, the revocation's entry
	// and its hour's marker.
	want := map[string]int{bucketKeys: 2, bucketClients: 3, bucketSigning: 2, bucketRevoked: 1, bucketSettings: 1, bucketExpiry: 3, bucketUsers: 0, bucketGrants: 0}
	for b, n := range want {
		if r.Records[b] != n {
			t.Errorf("%s: %d records after migration, want %d (%v)", b, r.Records[b], n, r.Records)
		}
	}
	if r.Generation != format2Generation {
		t.Errorf("generation after migration = %d, want %d unchanged", r.Generation, format2Generation)
	}
	err = v.View(func(tx *Tx) error {
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
		if alpha.ID != s.KeyAlphaID || alpha.LastUsedAt == nil || !slices.Equal(alpha.Limits, []Limit{{Count: 8000, Period: "month"}}) || !slices.Equal(alpha.Scopes, []string{"invoices:read"}) {
			t.Errorf("alpha after migration: %+v", alpha)
		}
		if c, err := tx.ClientBySecret(s.ClientErpSecret); err != nil || c.ID != s.ClientErpID || c.LastUsedAt != nil {
			// ClientBySecret leaves last use out; Client fills it.
			t.Errorf("erp by secret: %+v, %v", c, err)
		}
		if c, err := tx.Client("erp"); err != nil || c.LastUsedAt == nil || len(c.Limits) != 1 {
			t.Errorf("erp: %+v, %v", c, err)
		}
		portal, err := tx.ClientBySecret(s.ClientPortalSecret)
		if err != nil {
			return fmt.Errorf("portal: %w", err)
		}
		if portal.ID != s.ClientPortalID || portal.Name != "portal" ||
			!slices.Equal(portal.GrantTypes, []string{"authorization_code"}) ||
			!slices.Equal(portal.RedirectURIs, []string{"https://portal.example.com/callback", "http://127.0.0.1:9000/cb"}) ||
			!slices.Equal(portal.Scopes, []string{"openid", "profile", "invoices:read"}) ||
			portal.Description != "Customer portal" || portal.URL != "https://portal.example.com" ||
			portal.PolicyURL != "https://portal.example.com/privacy" || portal.TOSURL != "https://portal.example.com/terms" ||
			portal.TokenTTL != time.Hour || portal.Public || portal.PermissionGroup != "" {
			t.Errorf("portal after migration: %+v", portal)
		}
		if c, err := tx.ClientBySecret(s.ClientOldSecret); err != nil || c.ID != s.ClientOldID {
			t.Errorf("old's new secret: %v, %v", c, err)
		}
		if _, err := tx.ClientBySecret(s.ClientOldRetired); !errors.Is(err, ErrNotFound) {
			t.Errorf("old's retired secret: %v, want ErrNotFound", err)
		}
		// Counters: alpha verified twice, erp two tokens and a top-up.
		if c, err := tx.Usage(s.KeyAlphaID, "2026-12"); err != nil || c.Used != 2 {
			t.Errorf("alpha's uses this month: %+v, %v", c, err)
		}
		if c, err := tx.Usage(s.ClientErpID, "2026-12"); err != nil || c.Used != 2 || c.Extra != 100 {
			t.Errorf("erp's uses this month: %+v, %v", c, err)
		}
		if ok, err := tx.Revoked(jwtID(t, s.TokenRevoked)); err != nil || !ok {
			t.Errorf("revoked token: %v, %v", ok, err)
		}
		if ok, err := tx.Revoked(jwtID(t, s.TokenLive)); err != nil || ok {
			t.Errorf("live token: %v, %v", ok, err)
		}
		keys, err := tx.SigningKeys()
		if err != nil || len(keys) != 2 {
			t.Errorf("signing keys: %d, %v", len(keys), err)
		}
		if _, err := tx.ActiveSigningKey(); err != nil {
			t.Errorf("active signing key: %v", err)
		}
		log, err := tx.AuditLog()
		if err != nil {
			return err
		}
		if last := log[len(log)-1]; last.Action != "vault.migrate" || last.Detail != "format 2 -> 3" || last.Actor != "migration-test" {
			t.Errorf("last audit entry: %+v", last)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Format 3's records work on the migrated vault: a user signs in to
	// the authorization_code client and gets a code and a refresh token.
	err = v.Update(func(tx *Tx) error {
		u := &User{Name: "alice", PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"}
		if err := tx.CreateUser(u); err != nil {
			return err
		}
		g := &Grant{UserID: u.ID, ClientID: s.ClientPortalID, Scopes: []string{"openid"}}
		if err := tx.SaveGrant(g); err != nil {
			return err
		}
		code := "code-" + s.KeyAlphaID + "-0123456789"
		ac := &AuthCode{ClientID: s.ClientPortalID, UserID: u.ID, GrantID: g.ID, RedirectURI: "http://127.0.0.1:9000/cb",
			CodeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", Scopes: g.Scopes, ExpiresAt: tx.Now().Add(time.Minute)}
		if err := tx.CreateAuthCode(code, ac); err != nil {
			return err
		}
		if _, err := tx.RedeemAuthCode(code); err != nil {
			return err
		}
		rt, err := apikey.Generate("kmrt")
		if err != nil {
			return err
		}
		return tx.CreateRefreshToken(rt, &RefreshToken{GrantID: g.ID, Scopes: g.Scopes, ExpiresAt: tx.Now().Add(24 * time.Hour)})
	})
	if err != nil {
		t.Fatalf("format 3 records on the migrated vault: %v", err)
	}
	if _, err := v.Verify(); err != nil {
		t.Fatal(err)
	}
	v2, err := Open(path, Options{Identities: ids, Now: format2Clock})
	if err != nil {
		t.Fatal(err)
	}
	if n := countMigrations(t, v2); n != 1 {
		t.Errorf("%d migrations in the audit log", n)
	}
	checkRevocationPruned(t, path, ids, jwtID(t, s.TokenRevoked), format2Clock().Add(2*time.Hour))
}

// TestMigrateFormat2RolledBack: a format-2 file older than one this
// machine has seen is refused, not migrated (which would write a newer
// head over it).
func TestMigrateFormat2RolledBack(t *testing.T) {
	var s format2Secrets
	path, ids := fixtureCopy(t, "format2", &s)
	stateDir := t.TempDir()
	v, err := Open(path, Options{Identities: ids, Now: format2Clock, StateDir: stateDir})
	if err != nil {
		t.Fatal(err)
	}
	// This machine has seen a newer state than the fixture's.
	if err := v.Update(func(tx *Tx) error { return tx.Audit("test.write", "", "") }); err != nil {
		t.Fatal(err)
	}
	old, _ := fixtureCopy(t, "format2", &s)
	if _, err := Open(old, Options{Identities: ids, Now: format2Clock, StateDir: stateDir}); !errors.Is(err, ErrRolledBack) {
		t.Errorf("Open of the older format-2 copy = %v, want ErrRolledBack", err)
	}
	if got := rawBucket(t, old, bucketMeta)[string(metaFormat)]; u64(got) != 2 {
		t.Errorf("the refused copy was migrated to format %d", u64(got))
	}
}
