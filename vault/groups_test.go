package vault_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/keymint/keymint/vault"
)

func TestPermissionGroups(t *testing.T) {
	tv := newTestVault(t)
	var readers *vault.PermissionGroup
	for _, c := range []struct {
		name, group string
		want        error
	}{
		{"new", "readers", nil},
		{"another", "writers", nil},
		{"taken", "readers", vault.ErrNameTaken},
		{"like an id", "pg_abcdefghijklmnopqrstuv", vault.ErrInvalidName},
		{"empty", "", vault.ErrInvalidName},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := &vault.PermissionGroup{Name: c.group, Scopes: []string{"invoices:read"}, Description: "read invoices"}
			err := tv.Update(func(tx *vault.Tx) error { return tx.CreatePermissionGroup(g) })
			if !errors.Is(err, c.want) {
				t.Fatalf("CreatePermissionGroup = %v, want %v", err, c.want)
			}
			if err == nil && (!strings.HasPrefix(g.ID, "pg_") || !g.CreatedAt.Equal(tv.Clock.Now())) {
				t.Errorf("created: %+v", g)
			}
			if c.group == "readers" && err == nil {
				readers = g
			}
		})
	}
	tv.view(t, func(tx *vault.Tx) error {
		for _, ref := range []string{"readers", readers.ID} {
			if g, err := tx.PermissionGroup(ref); err != nil || g.ID != readers.ID || g.Description != "read invoices" {
				t.Errorf("PermissionGroup(%q) = %+v, %v", ref, g, err)
			}
		}
		if _, err := tx.PermissionGroup("nobody"); !errors.Is(err, vault.ErrNotFound) {
			t.Errorf("unknown group: %v", err)
		}
		groups, err := tx.PermissionGroups()
		if err != nil || len(groups) != 2 || groups[0].Name != "readers" || groups[1].Name != "writers" {
			t.Errorf("PermissionGroups = %v, %v", groups, err)
		}
		return nil
	})
	gen := tv.generation(t)
	tv.update(t, func(tx *vault.Tx) error {
		g := *readers
		g.Name, g.Scopes = "renamed?", []string{"invoices:read", "reports:read"}
		return tx.SavePermissionGroup(&g)
	})
	tv.view(t, func(tx *vault.Tx) error {
		g, err := tx.PermissionGroup(readers.ID)
		if err != nil || g.Name != "readers" || !slices.Equal(g.Scopes, []string{"invoices:read", "reports:read"}) {
			t.Errorf("after SavePermissionGroup: %+v, %v", g, err)
		}
		return nil
	})
	if got := tv.generation(t); got != gen+1 {
		t.Errorf("SavePermissionGroup: generation %d -> %d, want +1: servers cache groups", gen, got)
	}
	if err := tv.Update(func(tx *vault.Tx) error {
		return tx.SavePermissionGroup(&vault.PermissionGroup{ID: "pg_abcdefghijklmnopqrstuv"})
	}); !errors.Is(err, vault.ErrNotFound) {
		t.Errorf("SavePermissionGroup of an unknown group = %v", err)
	}
}

// TestPermissionGroupClients: a client names a group by name or id and is
// stored with its id; its scopes are then the group's; a group that a
// client names cannot be removed.
func TestPermissionGroupClients(t *testing.T) {
	tv := newTestVault(t)
	g := &vault.PermissionGroup{Name: "readers", Scopes: []string{"invoices:read"}}
	tv.update(t, func(tx *vault.Tx) error { return tx.CreatePermissionGroup(g) })
	var a, b *vault.Client
	tv.update(t, func(tx *vault.Tx) error {
		a = &vault.Client{Credential: vault.Credential{Name: "a", Scopes: []string{"own"}}, PermissionGroup: "readers"}
		if err := tx.CreateClient(a, newSecret(t, "kmcs")); err != nil {
			return err
		}
		b = &vault.Client{Credential: vault.Credential{Name: "b"}, PermissionGroup: g.ID}
		return tx.CreateClient(b, newSecret(t, "kmcs"))
	})
	if a.PermissionGroup != g.ID || b.PermissionGroup != g.ID {
		t.Errorf("clients' group: %q, %q, want the id %q", a.PermissionGroup, b.PermissionGroup, g.ID)
	}
	err := tv.Update(func(tx *vault.Tx) error {
		return tx.CreateClient(&vault.Client{Credential: vault.Credential{Name: "c"}, PermissionGroup: "nobody"}, newSecret(t, "kmcs"))
	})
	if !errors.Is(err, vault.ErrNotFound) {
		t.Errorf("client of an unknown group: %v, want ErrNotFound", err)
	}
	tv.view(t, func(tx *vault.Tx) error {
		c, err := tx.Client("a")
		if err != nil {
			return err
		}
		scopes, err := tx.ClientScopes(c)
		if err != nil || !slices.Equal(scopes, []string{"invoices:read"}) {
			t.Errorf("ClientScopes with a group = %v, %v", scopes, err)
		}
		c.PermissionGroup = ""
		if scopes, _ := tx.ClientScopes(c); !slices.Equal(scopes, []string{"own"}) {
			t.Errorf("ClientScopes without a group = %v", scopes)
		}
		return nil
	})

	err = tv.Update(func(tx *vault.Tx) error { _, err := tx.DeletePermissionGroups("readers"); return err })
	var inUse *vault.GroupInUseError
	if !errors.As(err, &inUse) || !errors.Is(err, vault.ErrGroupInUse) || !slices.Equal(inUse.Clients, []string{"a", "b"}) {
		t.Fatalf("removing a group clients name = %v, want a GroupInUseError naming a and b", err)
	}
	tv.update(t, func(tx *vault.Tx) error {
		a.PermissionGroup = ""
		if err := tx.SaveClient(a); err != nil {
			return err
		}
		_, err := tx.DeleteClients("b")
		return err
	})
	if err := tv.Update(func(tx *vault.Tx) error { _, err := tx.DeletePermissionGroups("nobody", "readers"); return err }); !errors.Is(err, vault.ErrNotFound) {
		t.Errorf("DeletePermissionGroups with a missing group = %v", err)
	}
	var removed []*vault.PermissionGroup
	tv.update(t, func(tx *vault.Tx) (err error) { removed, err = tx.DeletePermissionGroups("readers", g.ID); return err })
	if len(removed) != 1 {
		t.Errorf("removed %d groups, want 1", len(removed))
	}
	tv.view(t, func(tx *vault.Tx) error {
		if _, err := tx.PermissionGroup("readers"); !errors.Is(err, vault.ErrNotFound) {
			t.Errorf("removed group: %v", err)
		}
		return nil
	})
}

func TestPublicClient(t *testing.T) {
	tv := newTestVault(t)
	for _, c := range []struct {
		name   string
		public bool
		secret string
		want   error
	}{
		{"public, no secret", true, "", nil},
		{"public with a secret", true, newSecret(t, "kmcs"), vault.ErrPublicClient},
		{"confidential, no secret", false, "", errors.New("any")},
	} {
		t.Run(c.name, func(t *testing.T) {
			cl := &vault.Client{Credential: vault.Credential{Name: strings.ReplaceAll(c.name, " ", "")[:6]}, Public: c.public, GrantTypes: []string{"authorization_code"}}
			err := tv.Update(func(tx *vault.Tx) error { return tx.CreateClient(cl, c.secret) })
			switch {
			case c.want == nil && err != nil, c.want != nil && err == nil:
				t.Fatalf("CreateClient = %v, want %v", err, c.want)
			case c.want == vault.ErrPublicClient && !errors.Is(err, c.want):
				t.Fatalf("CreateClient = %v, want %v", err, c.want)
			}
			noSecretIn(t, err, c.secret)
		})
	}
	tv.view(t, func(tx *vault.Tx) error {
		c, err := tx.Client("public")
		if err != nil || !c.Public || len(c.Secrets) != 0 {
			t.Errorf("public client: %+v, %v", c, err)
		}
		return nil
	})
	if err := tv.Update(func(tx *vault.Tx) error {
		_, err := tx.RotateClient("public", newSecret(t, "kmcs"), 0)
		return err
	}); !errors.Is(err, vault.ErrPublicClient) {
		t.Errorf("RotateClient of a public client = %v", err)
	}
	if err := tv.Update(func(tx *vault.Tx) error {
		c, err := tx.Client("public")
		if err != nil {
			return err
		}
		c.Public = false
		return tx.SaveClient(c)
	}); !errors.Is(err, vault.ErrClientType) {
		t.Errorf("SaveClient turning a public client confidential = %v", err)
	}
	tv.update(t, func(tx *vault.Tx) error {
		c, err := tx.Client("public")
		if err != nil {
			return err
		}
		c.Description = "a single-page app"
		return tx.SaveClient(c)
	})
}
