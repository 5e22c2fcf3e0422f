package main

import (
	"errors"
	"os"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/keymint/keymint/apikey"
	"github.com/keymint/keymint/vault"
)

// Grants and refresh tokens are made only by keymint serve's consent page
// and token endpoint, which the CLI scripts do not drive. seedgrant and
// refreshtoken do, through the vault, what those do (tx.SaveGrant,
// tx.TouchGrant, tx.CreateRefreshToken, tx.RefreshToken), so that the
// scripts can show what `keymint grant`, `user rm`, `user disable` and
// `client rm` do to them. They open the script's default vault ($VAULT)
// with its default identity ($IDENTITY), remembering its state in
// $STATEDIR as keymint does.

// scriptVault opens the script's default vault.
func scriptVault(ts *testscript.TestScript) *vault.Vault {
	ids, err := vault.ReadIdentityFile(ts.Getenv("IDENTITY"), nil)
	ts.Check(err)
	v, err := vault.Open(ts.Getenv("VAULT"), vault.Options{
		Identities: ids,
		StateDir:   ts.Getenv("STATEDIR"),
		Actor:      "testscript",
	})
	ts.Check(err)
	return v
}

// seedgrant [-used AGO] VAR USER CLIENT [SCOPE...] records that USER (a
// name or id) consented to CLIENT (a name or id) having the scopes, as the
// consent page does, and sets $VAR to the grant's id. With -used, the
// grant's last access is AGO (a duration) before now.
func cmdSeedgrant(ts *testscript.TestScript, neg bool, args []string) {
	var used time.Duration
	touch := false
	if len(args) > 1 && args[0] == "-used" {
		d, err := time.ParseDuration(args[1])
		ts.Check(err)
		used, touch, args = d, true, args[2:]
	}
	if neg || len(args) < 3 {
		ts.Fatalf("usage: seedgrant [-used AGO] VAR USER CLIENT [SCOPE...]")
	}
	v := scriptVault(ts)
	var id string
	ts.Check(v.Update(func(tx *vault.Tx) error {
		u, err := tx.User(args[1])
		if err != nil {
			return err
		}
		c, err := tx.Client(args[2])
		if err != nil {
			return err
		}
		g := &vault.Grant{UserID: u.ID, ClientID: c.ID, Scopes: args[3:]}
		if err := tx.SaveGrant(g); err != nil {
			return err
		}
		id = g.ID
		if touch {
			return tx.TouchGrant(g.ID, time.Now().Add(-used))
		}
		return nil
	}))
	ts.Setenv(args[0], id)
}

// refreshtoken new GRANT FILE issues a refresh token under the grant with
// this id, as the token endpoint does after a code is redeemed, and writes
// it to FILE (never to argv). refreshtoken valid FILE checks that the
// token in FILE may be exchanged now; with !, that it is refused as
// invalid (vault.ErrRefreshInvalid).
func cmdRefreshtoken(ts *testscript.TestScript, neg bool, args []string) {
	switch {
	case !neg && len(args) == 3 && args[0] == "new":
		v := scriptVault(ts)
		var token string
		ts.Check(v.Update(func(tx *vault.Tx) error {
			s, err := tx.Settings()
			if err != nil {
				return err
			}
			if token, err = apikey.Generate(s.RefreshTokenPrefix()); err != nil {
				return err
			}
			return tx.CreateRefreshToken(token, &vault.RefreshToken{
				GrantID:   args[1],
				AuthTime:  time.Now(),
				ExpiresAt: time.Now().Add(24 * time.Hour),
			})
		}))
		ts.Check(os.WriteFile(ts.MkAbs(args[2]), []byte(token+"\n"), 0o600))
	case len(args) == 2 && args[0] == "valid":
		token := ts.ReadFile(args[1])
		token = token[:len(token)-1]
		err := scriptVault(ts).View(func(tx *vault.Tx) error {
			_, err := tx.RefreshToken(token)
			return err
		})
		switch {
		case neg && errors.Is(err, vault.ErrRefreshInvalid):
		case neg && err == nil:
			ts.Fatalf("the refresh token in %s may still be exchanged", args[1])
		case !neg && err == nil:
		default:
			ts.Fatalf("refresh token in %s: %v", args[1], err)
		}
	default:
		ts.Fatalf("usage: refreshtoken new GRANT FILE | [!] refreshtoken valid FILE")
	}
}
