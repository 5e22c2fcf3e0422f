package vault_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keymint/keymint/vault"
)

func TestCreateUser(t *testing.T) {
	tv := newTestVault(t)
	tv.update(t, func(tx *vault.Tx) error {
		// A key may share a name with a user: names are unique per kind.
		return tx.CreateKey(&vault.Key{Credential: vault.Credential{Name: "bob"}}, newSecret(t, "km"))
	})
	for _, c := range []struct {
		name, user, hash string
		want             error
	}{
		{"new user", "alice", testHash, nil},
		{"name of a key", "bob", testHash, nil},
		{"name taken", "alice", testHash, vault.ErrNameTaken},
		{"empty name", "", testHash, vault.ErrInvalidName},
		{"name like an id", "usr_abcdefghijklmnopqrstuv", testHash, vault.ErrInvalidName},
		{"name like another kind's id", "grt_abcdefghijklmnopqrstuv", testHash, vault.ErrInvalidName},
		{"a password, not its hash", "carol", "hunter2-correct-horse", vault.ErrPasswordHash},
		{"no hash", "carol", "", vault.ErrPasswordHash},
		{"hash too long", "carol", "$argon2id$" + strings.Repeat("a", 600), vault.ErrPasswordHash},
	} {
		t.Run(c.name, func(t *testing.T) {
			u := &vault.User{Name: c.user, Email: "x@example.com", PasswordHash: c.hash}
			err := tv.Update(func(tx *vault.Tx) error { return tx.CreateUser(u) })
			if !errors.Is(err, c.want) {
				t.Fatalf("CreateUser = %v, want %v", err, c.want)
			}
			noSecretIn(t, err, c.hash)
			if c.want != nil {
				return
			}
			if !strings.HasPrefix(u.ID, "usr_") || len(u.ID) != 4+22 || !u.CreatedAt.Equal(tv.Clock.Now()) || !u.PasswordChangedAt.Equal(u.CreatedAt) {
				t.Errorf("created user: %+v", u)
			}
		})
	}
}

func TestUserLookup(t *testing.T) {
	tv := newTestVault(t)
	var ids []string
	tv.update(t, func(tx *vault.Tx) error {
		for _, name := range []string{"zoe", "alice", "mike"} {
			u := &vault.User{Name: name, DisplayName: strings.ToUpper(name), PasswordHash: testHash}
			if err := tx.CreateUser(u); err != nil {
				return err
			}
			ids = append(ids, u.ID)
		}
		return nil
	})
	tv.view(t, func(tx *vault.Tx) error {
		for _, ref := range []string{"alice", ids[1]} {
			u, err := tx.User(ref)
			if err != nil || u.ID != ids[1] || u.Name != "alice" || u.DisplayName != "ALICE" || u.PasswordHash != testHash {
				t.Errorf("User(%q) = %+v, %v", ref, u, err)
			}
		}
		for _, ref := range []string{"nobody", "usr_abcdefghijklmnopqrstuv"} {
			if _, err := tx.User(ref); !errors.Is(err, vault.ErrNotFound) {
				t.Errorf("User(%q) = %v, want ErrNotFound", ref, err)
			}
		}
		users, err := tx.Users()
		if err != nil {
			return err
		}
		var names []string
		for _, u := range users {
			names = append(names, u.Name)
		}
		if !slices.Equal(names, []string{"alice", "mike", "zoe"}) {
			t.Errorf("Users = %v, want ordered by name", names)
		}
		return nil
	})
}

// TestUserJSON: a User encoded for output never shows its password hash.
func TestUserJSON(t *testing.T) {
	b, err := json.Marshal(&vault.User{ID: "usr_x", Name: "alice", PasswordHash: testHash})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("argon2id")) || bytes.Contains(b, []byte("password_hash")) {
		t.Errorf("a User's JSON shows the hash: %s", b)
	}
}

func TestSaveUser(t *testing.T) {
	tv := newTestVault(t)
	u := &vault.User{Name: "alice", Email: "alice@example.com", PasswordHash: testHash}
	tv.update(t, func(tx *vault.Tx) error { return tx.CreateUser(u) })
	created := u.CreatedAt
	for _, c := range []struct {
		name    string
		change  func(u *vault.User)
		want    error
		genStep uint64
		audit   []string
	}{
		{"nothing changed", func(u *vault.User) {}, nil, 0, nil},
		{"new password", func(u *vault.User) { u.PasswordHash = testHash2 }, nil, 1, []string{"user.passwd"}},
		{"disabled", func(u *vault.User) { u.Disabled = true }, nil, 1, []string{"user.update"}},
		{"email and password", func(u *vault.User) { u.Email = "a@example.org"; u.PasswordHash = testHash }, nil, 1, []string{"user.passwd", "user.update"}},
		{"a rename is not a save", func(u *vault.User) { u.Name = "alicia" }, nil, 0, nil},
		{"a password, not a hash", func(u *vault.User) { u.PasswordHash = "hunter2-hunter2" }, vault.ErrPasswordHash, 0, nil},
		{"unknown user", func(u *vault.User) { u.ID = "usr_abcdefghijklmnopqrstuv" }, vault.ErrNotFound, 0, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			tv.Clock.Advance(time.Minute)
			var cur *vault.User
			tv.view(t, func(tx *vault.Tx) (err error) { cur, err = tx.User("alice"); return err })
			before, gen, n := *cur, tv.generation(t), tv.auditLen(t)
			c.change(cur)
			hash := cur.PasswordHash
			err := tv.Update(func(tx *vault.Tx) error { return tx.SaveUser(cur) })
			if !errors.Is(err, c.want) {
				t.Fatalf("SaveUser = %v, want %v", err, c.want)
			}
			noSecretIn(t, err, hash)
			if got := tv.generation(t); got != gen+c.genStep {
				t.Errorf("generation %d -> %d, want +%d", gen, got, c.genStep)
			}
			if got := tv.auditActions(t, n, testHash, testHash2, "hunter2"); !slices.Equal(got, c.audit) {
				t.Errorf("audit %v, want %v", got, c.audit)
			}
			var after *vault.User
			tv.view(t, func(tx *vault.Tx) (err error) { after, err = tx.User(before.ID); return err })
			if after.Name != "alice" || !after.CreatedAt.Equal(created) {
				t.Errorf("name or creation changed: %+v", after)
			}
			wantChanged := before.PasswordChangedAt
			if c.want == nil && hash != before.PasswordHash {
				wantChanged = tv.Clock.Now()
			}
			if !after.PasswordChangedAt.Equal(wantChanged) {
				t.Errorf("PasswordChangedAt = %v, want %v", after.PasswordChangedAt, wantChanged)
			}
		})
	}
}

// TestDeleteUsers: removing a user removes their grants and the refresh
// tokens issued under those, and refuses their codes; all of several, or
// none if one is missing.
func TestDeleteUsers(t *testing.T) {
	f := newFlow(t)
	tv := f.tv
	token, _ := f.newRefresh(t)
	code := f.newCode(t)
	var bob *vault.User
	tv.update(t, func(tx *vault.Tx) error {
		bob = &vault.User{Name: "bob", PasswordHash: testHash}
		return tx.CreateUser(bob)
	})
	if err := tv.Update(func(tx *vault.Tx) error { _, err := tx.DeleteUsers("alice", "nobody"); return err }); !errors.Is(err, vault.ErrNotFound) {
		t.Fatalf("DeleteUsers with a missing user = %v, want ErrNotFound", err)
	}
	tv.view(t, func(tx *vault.Tx) error {
		if _, err := tx.User("alice"); err != nil {
			t.Errorf("alice after a failed delete: %v", err)
		}
		return nil
	})
	n := tv.auditLen(t)
	var removed []*vault.User
	tv.update(t, func(tx *vault.Tx) (err error) {
		removed, err = tx.DeleteUsers("alice", f.user.ID, "bob")
		return err
	})
	if len(removed) != 2 {
		t.Errorf("removed %d users, want 2 (alice named twice)", len(removed))
	}
	if got := tv.auditActions(t, n); !slices.Equal(got, []string{"grant.revoke", "user.delete", "user.delete"}) {
		t.Errorf("audit: %v", got)
	}
	tv.view(t, func(tx *vault.Tx) error {
		if _, err := tx.User("alice"); !errors.Is(err, vault.ErrNotFound) {
			t.Errorf("alice: %v", err)
		}
		if _, err := tx.GrantFor(f.user.ID, f.client.ID); !errors.Is(err, vault.ErrNotFound) {
			t.Errorf("alice's grant: %v", err)
		}
		if _, err := tx.RefreshToken(token); !errors.Is(err, vault.ErrRefreshInvalid) {
			t.Errorf("alice's refresh token: %v", err)
		}
		return nil
	})
	if err := tv.Update(func(tx *vault.Tx) error { _, err := tx.RedeemAuthCode(code); return err }); !errors.Is(err, vault.ErrCodeInvalid) {
		t.Errorf("alice's code: %v, want ErrCodeInvalid", err)
	}
	recs := tv.records(t)
	for _, b := range []string{"users", "grants", "grant_index", "refresh", "families"} {
		if recs[b] != 0 {
			t.Errorf("%s: %d records left", b, recs[b])
		}
	}
	// The name is free again.
	tv.update(t, func(tx *vault.Tx) error { return tx.CreateUser(&vault.User{Name: "alice", PasswordHash: testHash}) })
}

// TestTamperUser: a user record altered, or replayed from before a
// password change (which would bring an old password back), is refused by
// the read that signs a user in.
func TestTamperUser(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(tv *testVault, key, old, cur []byte)
	}{
		{"bit flipped", func(tv *testVault, key, _, cur []byte) {
			b := bytes.Clone(cur)
			b[len(b)/2] ^= 0x10
			tv.rawPut(t, "users", key, b)
		}},
		{"replayed from before the password change", func(tv *testVault, key, old, _ []byte) { tv.rawPut(t, "users", key, old) }},
		{"removed", func(tv *testVault, key, _, _ []byte) { tv.rawPut(t, "users", key, nil) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			tv := newTestVault(t)
			u := &vault.User{Name: "alice", PasswordHash: testHash}
			tv.update(t, func(tx *vault.Tx) error { return tx.CreateUser(u) })
			old := rawGet(t, tv, "users", []byte(u.ID))
			tv.update(t, func(tx *vault.Tx) error {
				u.PasswordHash = testHash2
				return tx.SaveUser(u)
			})
			c.change(tv, []byte(u.ID), old, rawGet(t, tv, "users", []byte(u.ID)))
			for _, ref := range []string{"alice", u.ID} {
				err := tv.View(func(tx *vault.Tx) error { _, err := tx.User(ref); return err })
				if !detected(err) {
					t.Errorf("User(%q) = %v, want tampering detected", ref, err)
				}
			}
			if _, err := tv.Verify(); !detected(err) || tamperedBucket(err) != "users" {
				t.Errorf("Verify = %v, want tampering in users", err)
			}
		})
	}
}
