package vault_test

import (
	"slices"
	"testing"
	"time"

	"github.com/keymint/keymint/vault"
)

// TestGenerationAuthFlow: users, permission groups, grants and clients are
// records servers cache, and their changes advance the generation and reach
// the change log; codes, refresh tokens and a grant's last access are usage
// data written on every sign-in and token request, and do not, so that a
// thousand sign-ins a minute make no server reload.
func TestGenerationAuthFlow(t *testing.T) {
	tv := newTestVault(t)
	var user *vault.User
	var client *vault.Client
	var group *vault.PermissionGroup
	var grant *vault.Grant
	code, refresh, next := randomCode(t), newSecret(t, "kmrt"), newSecret(t, "kmrt")
	var family string
	for _, c := range []struct {
		name   string
		step   uint64
		change *vault.Change // the change logged, if any
		fn     func(tx *vault.Tx) error
	}{
		{"create user", 1, &vault.Change{Kind: vault.ChangeUser}, func(tx *vault.Tx) error {
			user = &vault.User{Name: "alice", PasswordHash: testHash}
			return tx.CreateUser(user)
		}},
		{"create group", 1, &vault.Change{Kind: vault.ChangePermissionGroup}, func(tx *vault.Tx) error {
			group = &vault.PermissionGroup{Name: "readers", Scopes: []string{"openid"}}
			return tx.CreatePermissionGroup(group)
		}},
		{"create client", 1, &vault.Change{Kind: vault.ChangeClient}, func(tx *vault.Tx) error {
			client = &vault.Client{Credential: vault.Credential{Name: "spa"}, Public: true, PermissionGroup: "readers"}
			return tx.CreateClient(client, "")
		}},
		{"consent", 1, &vault.Change{Kind: vault.ChangeGrant}, func(tx *vault.Tx) error {
			grant = &vault.Grant{UserID: user.ID, ClientID: client.ID, Scopes: []string{"openid"}}
			return tx.SaveGrant(grant)
		}},
		{"the same consent again", 0, nil, func(tx *vault.Tx) error {
			return tx.SaveGrant(&vault.Grant{UserID: user.ID, ClientID: client.ID, Scopes: []string{"openid"}})
		}},
		{"create code", 0, nil, func(tx *vault.Tx) error {
			return tx.CreateAuthCode(code, &vault.AuthCode{ClientID: client.ID, UserID: user.ID, GrantID: grant.ID,
				RedirectURI: "https://spa.example.com/cb", CodeChallenge: testChallenge, ExpiresAt: tx.Now().Add(time.Minute)})
		}},
		{"redeem code, issue refresh token", 0, nil, func(tx *vault.Tx) error {
			ac, err := tx.RedeemAuthCode(code)
			if err != nil {
				return err
			}
			rt := &vault.RefreshToken{GrantID: ac.GrantID, Scopes: ac.Scopes, ExpiresAt: tx.Now().Add(time.Hour)}
			if err := tx.CreateRefreshToken(refresh, rt); err != nil {
				return err
			}
			family = rt.FamilyID
			return tx.RecordAuthCodeIssue(code, rt.FamilyID, vault.IssuedToken{JTI: "jti-1", ExpiresAt: tx.Now().Add(time.Hour)})
		}},
		{"rotate refresh token", 0, nil, func(tx *vault.Tx) error { _, err := tx.RotateRefreshToken(refresh, next); return err }},
		{"touch grant", 0, nil, func(tx *vault.Tx) error { return tx.TouchGrant(grant.ID, tx.Now()) }},
		{"revoke refresh family", 0, nil, func(tx *vault.Tx) error { return tx.RevokeRefreshFamily(family) }},
		{"password change", 1, &vault.Change{Kind: vault.ChangeUser}, func(tx *vault.Tx) error {
			user.PasswordHash = testHash2
			return tx.SaveUser(user)
		}},
		{"group scopes", 1, &vault.Change{Kind: vault.ChangePermissionGroup}, func(tx *vault.Tx) error {
			group.Scopes = []string{"openid", "profile"}
			return tx.SavePermissionGroup(group)
		}},
		{"revoke grant", 1, &vault.Change{Kind: vault.ChangeGrant}, func(tx *vault.Tx) error { return tx.RevokeGrant(grant.ID) }},
		{"remove user", 1, &vault.Change{Kind: vault.ChangeUser}, func(tx *vault.Tx) error { _, err := tx.DeleteUsers("alice"); return err }},
	} {
		before := tv.generation(t)
		tv.update(t, c.fn)
		if got := tv.generation(t); got != before+c.step {
			t.Errorf("%s: generation %d -> %d, want +%d", c.name, before, got, c.step)
		}
		if c.change == nil {
			continue
		}
		tv.view(t, func(tx *vault.Tx) error {
			changes, ok, err := tx.ChangesSince(before)
			if !ok || err != nil || !slices.ContainsFunc(changes, func(ch vault.Change) bool { return ch.Kind == c.change.Kind }) {
				t.Errorf("%s: changes %v (%v, %v), want a %s", c.name, changes, ok, err, c.change.Kind)
			}
			return nil
		})
	}
}
