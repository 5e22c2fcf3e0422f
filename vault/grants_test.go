package vault_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keymint/keymint/vault"
)

func TestSaveGrant(t *testing.T) {
	f := newFlow(t)
	tv := f.tv
	if !strings.HasPrefix(f.grant.ID, "grt_") || !f.grant.CreatedAt.Equal(tv.Clock.Now()) || !slices.Equal(f.grant.Scopes, []string{"openid", "invoices:read"}) {
		t.Fatalf("new grant: %+v", f.grant)
	}
	for _, c := range []struct {
		name     string
		grant    vault.Grant
		want     error
		scopes   []string
		genStep  uint64
		audit    []string
		newGrant bool
	}{
		{"same scopes again", vault.Grant{Scopes: []string{"invoices:read"}}, nil, []string{"openid", "invoices:read"}, 0, nil, false},
		{"more scopes", vault.Grant{Scopes: []string{"invoices:write", "openid", "invoices:write"}}, nil, []string{"openid", "invoices:read", "invoices:write"}, 1, []string{"grant.update"}, false},
		{"unknown user", vault.Grant{UserID: "usr_abcdefghijklmnopqrstuv"}, vault.ErrNotFound, nil, 0, nil, false},
		{"user by name", vault.Grant{UserID: "alice"}, vault.ErrNotFound, nil, 0, nil, false},
		{"unknown client", vault.Grant{ClientID: "cl_abcdefghijklmnopqrstuv"}, vault.ErrNotFound, nil, 0, nil, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			tv.Clock.Advance(time.Minute)
			g := c.grant
			if g.UserID == "" {
				g.UserID = f.user.ID
			}
			if g.ClientID == "" {
				g.ClientID = f.client.ID
			}
			gen, n := tv.generation(t), tv.auditLen(t)
			err := tv.Update(func(tx *vault.Tx) error { return tx.SaveGrant(&g) })
			if !errors.Is(err, c.want) {
				t.Fatalf("SaveGrant = %v, want %v", err, c.want)
			}
			if got := tv.generation(t); got != gen+c.genStep {
				t.Errorf("generation %d -> %d, want +%d", gen, got, c.genStep)
			}
			if got := tv.auditActions(t, n); !slices.Equal(got, c.audit) {
				t.Errorf("audit %v, want %v", got, c.audit)
			}
			if c.want != nil {
				return
			}
			if g.ID != f.grant.ID || !slices.Equal(g.Scopes, c.scopes) || !g.CreatedAt.Equal(f.grant.CreatedAt) {
				t.Errorf("grant after SaveGrant: %+v, want %v", g, c.scopes)
			}
			if c.genStep > 0 && !g.UpdatedAt.Equal(tv.Clock.Now()) {
				t.Errorf("UpdatedAt = %v, want now", g.UpdatedAt)
			}
		})
	}
}

func TestGrants(t *testing.T) {
	tv := newTestVault(t)
	var users, clients []string
	grants := map[[2]string]string{}
	tv.update(t, func(tx *vault.Tx) error {
		for _, name := range []string{"u1", "u2"} {
			u := &vault.User{Name: name, PasswordHash: testHash}
			if err := tx.CreateUser(u); err != nil {
				return err
			}
			users = append(users, u.ID)
		}
		for _, name := range []string{"c1", "c2"} {
			c := &vault.Client{Credential: vault.Credential{Name: name}}
			if err := tx.CreateClient(c, newSecret(t, "kmcs")); err != nil {
				return err
			}
			clients = append(clients, c.ID)
		}
		return nil
	})
	// u1 allows c1 and c2, u2 allows c2: one grant each, oldest first.
	for _, p := range [][2]int{{0, 0}, {0, 1}, {1, 1}} {
		tv.Clock.Advance(time.Second)
		tv.update(t, func(tx *vault.Tx) error {
			g := &vault.Grant{UserID: users[p[0]], ClientID: clients[p[1]], Scopes: []string{"openid"}}
			err := tx.SaveGrant(g)
			grants[[2]string{g.UserID, g.ClientID}] = g.ID
			return err
		})
	}
	id := func(u, c int) string { return grants[[2]string{users[u], clients[c]}] }
	for _, c := range []struct {
		name   string
		filter vault.GrantFilter
		want   []string
	}{
		{"all", vault.GrantFilter{}, []string{id(0, 0), id(0, 1), id(1, 1)}},
		{"of u1", vault.GrantFilter{UserID: users[0]}, []string{id(0, 0), id(0, 1)}},
		{"to c2", vault.GrantFilter{ClientID: clients[1]}, []string{id(0, 1), id(1, 1)}},
		{"of u2 to c2", vault.GrantFilter{UserID: users[1], ClientID: clients[1]}, []string{id(1, 1)}},
		{"of u2 to c1", vault.GrantFilter{UserID: users[1], ClientID: clients[0]}, nil},
		{"of nobody", vault.GrantFilter{UserID: "usr_abcdefghijklmnopqrstuv"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			tv.view(t, func(tx *vault.Tx) error {
				gs, err := tx.Grants(c.filter)
				var got []string
				for _, g := range gs {
					got = append(got, g.ID)
				}
				if err != nil || !slices.Equal(got, c.want) {
					t.Errorf("Grants(%+v) = %v, %v; want %v", c.filter, got, err, c.want)
				}
				return nil
			})
		})
	}
	tv.view(t, func(tx *vault.Tx) error {
		g, err := tx.GrantFor(users[0], clients[1])
		if err != nil || g.ID != id(0, 1) {
			t.Errorf("GrantFor = %+v, %v", g, err)
		}
		if _, err := tx.GrantFor(users[1], clients[0]); !errors.Is(err, vault.ErrNotFound) {
			t.Errorf("GrantFor without a grant = %v", err)
		}
		if g, err := tx.Grant(id(1, 1)); err != nil || g.UserID != users[1] {
			t.Errorf("Grant = %+v, %v", g, err)
		}
		return nil
	})
	// Removing a client removes the grants users gave it.
	tv.update(t, func(tx *vault.Tx) error { _, err := tx.DeleteClients("c2"); return err })
	tv.view(t, func(tx *vault.Tx) error {
		gs, err := tx.Grants(vault.GrantFilter{})
		if err != nil || len(gs) != 1 || gs[0].ID != id(0, 0) {
			t.Errorf("grants after removing c2: %v, %v", gs, err)
		}
		return nil
	})
}

// TestRevokeGrant: revoking a grant removes it and every refresh token
// issued under it, current or rotated, and its codes stop working.
func TestRevokeGrant(t *testing.T) {
	f := newFlow(t)
	tv := f.tv
	token, _ := f.newRefresh(t)
	next := newSecret(t, "kmrt")
	tv.update(t, func(tx *vault.Tx) error { _, err := tx.RotateRefreshToken(token, next); return err })
	other, _ := f.newRefresh(t)
	code := f.newCode(t)
	if got := tv.records(t)["refresh"]; got != 3 {
		t.Fatalf("%d refresh tokens before, want 3", got)
	}
	tv.update(t, func(tx *vault.Tx) error { return tx.TouchGrant(f.grant.ID, time.Time{}) })
	gen := tv.generation(t)
	tv.update(t, func(tx *vault.Tx) error { return tx.RevokeGrant(f.grant.ID) })
	if tv.generation(t) != gen+1 {
		t.Error("RevokeGrant did not advance the generation: servers cache grants")
	}
	tv.view(t, func(tx *vault.Tx) error {
		for _, tok := range []string{next, other} {
			if _, err := tx.RefreshToken(tok); !errors.Is(err, vault.ErrRefreshInvalid) {
				t.Errorf("refresh token after its grant was revoked: %v", err)
			}
		}
		if _, err := tx.Grant(f.grant.ID); !errors.Is(err, vault.ErrNotFound) {
			t.Errorf("revoked grant: %v", err)
		}
		return nil
	})
	if err := tv.Update(func(tx *vault.Tx) error { _, err := tx.RedeemAuthCode(code); return err }); !errors.Is(err, vault.ErrCodeInvalid) {
		t.Errorf("code after its grant was revoked: %v", err)
	}
	recs := tv.records(t)
	// The expiry queue keeps its cursor, the code's entry and the markers
	// of the code's and the tokens' hours (until the cursor leaves them);
	// no token's entry.
	if recs["refresh"] != 0 || recs["families"] != 0 || recs["grant_index"] != 0 || recs["expiry"] != 4 {
		t.Errorf("records after RevokeGrant: %v", recs)
	}
	if err := tv.Update(func(tx *vault.Tx) error { return tx.RevokeGrant(f.grant.ID) }); !errors.Is(err, vault.ErrNotFound) {
		t.Errorf("RevokeGrant twice = %v", err)
	}
	// A new consent makes a new grant.
	tv.update(t, func(tx *vault.Tx) error {
		g := &vault.Grant{UserID: f.user.ID, ClientID: f.client.ID, Scopes: []string{"openid"}}
		if err := tx.SaveGrant(g); err != nil {
			return err
		}
		if g.ID == f.grant.ID || g.LastUsedAt != nil {
			t.Errorf("grant after a revoked one: %+v", g)
		}
		return nil
	})
}

// TestTouchGrant: a grant's last access is usage data: recording it does
// not advance the generation, reads fill it, and it never goes back.
func TestTouchGrant(t *testing.T) {
	f := newFlow(t)
	tv := f.tv
	t0 := tv.Clock.Now()
	gen := tv.generation(t)
	tv.update(t, func(tx *vault.Tx) error { return tx.TouchGrant(f.grant.ID, t0.Add(time.Hour)) })
	tv.update(t, func(tx *vault.Tx) error { return tx.TouchGrant(f.grant.ID, t0.Add(time.Minute)) }) // older: kept out
	if got := tv.generation(t); got != gen {
		t.Errorf("TouchGrant: generation %d -> %d", gen, got)
	}
	tv.view(t, func(tx *vault.Tx) error {
		want := t0.Add(time.Hour)
		g, err := tx.GrantFor(f.user.ID, f.client.ID)
		if err != nil || g.LastUsedAt == nil || !g.LastUsedAt.Equal(want) {
			t.Errorf("GrantFor: %+v, %v", g, err)
		}
		if g, err := tx.Grant(f.grant.ID); err != nil || g.LastUsedAt == nil || !g.LastUsedAt.Equal(want) {
			t.Errorf("Grant: %+v, %v", g, err)
		}
		gs, err := tx.Grants(vault.GrantFilter{UserID: f.user.ID})
		if err != nil || len(gs) != 1 || gs[0].LastUsedAt == nil || !gs[0].LastUsedAt.Equal(want) {
			t.Errorf("Grants: %v, %v", gs, err)
		}
		return nil
	})
	if err := tv.Update(func(tx *vault.Tx) error { return tx.TouchGrant("grt_abcdefghijklmnopqrstuv", t0) }); !errors.Is(err, vault.ErrNotFound) {
		t.Errorf("TouchGrant of an unknown grant = %v", err)
	}
}

// TestManyGrantsLastUse: past a few grants, last accesses are read in one
// pass over usage; the result is the same.
func TestManyGrantsLastUse(t *testing.T) {
	tv := newTestVault(t)
	const n = 70
	var ids []string
	tv.update(t, func(tx *vault.Tx) error {
		c := &vault.Client{Credential: vault.Credential{Name: "app"}}
		if err := tx.CreateClient(c, newSecret(t, "kmcs")); err != nil {
			return err
		}
		for i := range n {
			u := &vault.User{Name: "u" + itoa(i), PasswordHash: testHash}
			if err := tx.CreateUser(u); err != nil {
				return err
			}
			g := &vault.Grant{UserID: u.ID, ClientID: c.ID, Scopes: []string{"openid"}}
			if err := tx.SaveGrant(g); err != nil {
				return err
			}
			ids = append(ids, g.ID)
			if i%2 == 0 {
				if err := tx.TouchGrant(g.ID, tx.Now().Add(time.Duration(i)*time.Second)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	tv.view(t, func(tx *vault.Tx) error {
		gs, err := tx.Grants(vault.GrantFilter{})
		if err != nil || len(gs) != n {
			t.Fatalf("Grants: %d, %v", len(gs), err)
		}
		for _, g := range gs {
			i := slices.Index(ids, g.ID)
			want := i%2 == 0
			if (g.LastUsedAt != nil) != want || (want && !g.LastUsedAt.Equal(tv.Clock.Now().Add(time.Duration(i)*time.Second))) {
				t.Errorf("grant %d: LastUsedAt %v", i, g.LastUsedAt)
			}
		}
		return nil
	})
}
