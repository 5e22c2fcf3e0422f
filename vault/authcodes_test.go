package vault_test

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keymint/keymint/vault"
)

func TestCreateAuthCode(t *testing.T) {
	f := newFlow(t)
	tv := f.tv
	var other *vault.Grant
	tv.update(t, func(tx *vault.Tx) error {
		var err error
		_, _, other, err = addFlow(t, tx, "bob", "other")
		return err
	})
	taken := f.newCode(t)
	for _, c := range []struct {
		name   string
		code   string
		change func(c *vault.AuthCode)
		want   error
	}{
		{"new code", randomCode(t), func(*vault.AuthCode) {}, nil},
		{"too short", "abc", func(*vault.AuthCode) {}, errors.New("any")},
		{"in use", taken, func(*vault.AuthCode) {}, errors.New("any")},
		{"no challenge", randomCode(t), func(c *vault.AuthCode) { c.CodeChallenge = "" }, errors.New("any")},
		{"no redirect URI", randomCode(t), func(c *vault.AuthCode) { c.RedirectURI = "" }, errors.New("any")},
		{"expired", randomCode(t), func(c *vault.AuthCode) { c.ExpiresAt = tv.Clock.Now() }, errors.New("any")},
		{"already used", randomCode(t), func(c *vault.AuthCode) { now := tv.Clock.Now(); c.UsedAt = &now }, errors.New("any")},
		{"unknown grant", randomCode(t), func(c *vault.AuthCode) { c.GrantID = "grt_abcdefghijklmnopqrstuv" }, vault.ErrNotFound},
		{"another user's grant", randomCode(t), func(c *vault.AuthCode) { c.GrantID = other.ID }, vault.ErrNotFound},
	} {
		t.Run(c.name, func(t *testing.T) {
			gen := tv.generation(t)
			var ac *vault.AuthCode
			err := tv.Update(func(tx *vault.Tx) error {
				ac = f.authCode(tx, time.Minute)
				c.change(ac)
				return tx.CreateAuthCode(c.code, ac)
			})
			switch {
			case c.want == nil && err != nil, c.want != nil && err == nil:
				t.Fatalf("CreateAuthCode = %v, want %v", err, c.want)
			case errors.Is(c.want, vault.ErrNotFound) && !errors.Is(err, c.want):
				t.Fatalf("CreateAuthCode = %v, want %v", err, c.want)
			}
			noSecretIn(t, err, c.code)
			if c.want == nil && !ac.CreatedAt.Equal(tv.Clock.Now()) {
				t.Errorf("CreatedAt = %v", ac.CreatedAt)
			}
			if got := tv.generation(t); got != gen {
				t.Errorf("generation %d -> %d: a code is usage data", gen, got)
			}
		})
	}
	// The code is stored as its HMAC alone.
	for k, v := range rawRecords(t, tv.Path, "codes") {
		if strings.Contains(k, taken) || bytes.Contains(v, []byte(taken)) {
			t.Error("a code is stored in the clear")
		}
	}
}

// TestRedeemAuthCode: a code is redeemed once; a second redemption is a
// reuse that revokes what was issued with the code, and that revocation
// stands even though the request fails; an expired or unknown code, or one
// whose grant no longer stands, is invalid.
func TestRedeemAuthCode(t *testing.T) {
	f := newFlow(t)
	tv := f.tv
	code := f.newCode(t)
	// The caller's own check fails (a wrong code verifier, say): the code
	// is not used up.
	errVerifier := errors.New("code verifier does not match")
	if err := tv.Update(func(tx *vault.Tx) error {
		if _, err := tx.RedeemAuthCode(code); err != nil {
			return err
		}
		return errVerifier
	}); !errors.Is(err, errVerifier) {
		t.Fatal(err)
	}
	// Redeemed, and a refresh token and an access token issued with it.
	refresh := newSecret(t, "kmrt")
	var ac *vault.AuthCode
	var rt *vault.RefreshToken
	gen := tv.generation(t)
	tv.update(t, func(tx *vault.Tx) error {
		var err error
		if ac, err = tx.RedeemAuthCode(code); err != nil {
			return err
		}
		rt = &vault.RefreshToken{GrantID: ac.GrantID, Scopes: ac.Scopes, AuthTime: ac.AuthTime, ExpiresAt: tx.Now().Add(24 * time.Hour)}
		if err := tx.CreateRefreshToken(refresh, rt); err != nil {
			return err
		}
		return tx.RecordAuthCodeIssue(code, rt.FamilyID, vault.IssuedToken{JTI: "jti-1", ExpiresAt: tx.Now().Add(time.Hour)})
	})
	if ac.UsedAt == nil || !ac.UsedAt.Equal(tv.Clock.Now()) || ac.UserID != f.user.ID || ac.Nonce != "n-0S6_WzA2Mj" || !slices.Equal(ac.Scopes, f.grant.Scopes) {
		t.Errorf("redeemed code: %+v", ac)
	}
	if got := tv.generation(t); got != gen {
		t.Errorf("redeeming: generation %d -> %d", gen, got)
	}

	// Presented again, as an attacker holding it would, by a request that
	// fails: the reuse is reported and what was issued is revoked anyway.
	tv.Clock.Advance(10 * time.Second)
	errInvalidGrant := errors.New("invalid_grant")
	var err error
	if got := tv.Update(func(tx *vault.Tx) error {
		_, err = tx.RedeemAuthCode(code)
		var reused *vault.CodeReusedError
		if errors.As(err, &reused) {
			// Nothing more is written after a reuse.
			if err := tx.Revoke(vault.Revocation{JTI: "other", ExpiresAt: tx.Now().Add(time.Hour)}); !errors.Is(err, vault.ErrCodeInvalid) {
				t.Errorf("a write after the reuse = %v", err)
			}
		}
		return errInvalidGrant
	}); got != errInvalidGrant {
		t.Errorf("Update = %v, want the function's error", got)
	}
	var reused *vault.CodeReusedError
	if !errors.As(err, &reused) || !errors.Is(err, vault.ErrCodeInvalid) || reused.Code.FamilyID != rt.FamilyID {
		t.Fatalf("second redemption = %v, want a CodeReusedError", err)
	}
	noSecretIn(t, err, code)
	tv.view(t, func(tx *vault.Tx) error {
		if _, err := tx.RefreshToken(refresh); !errors.Is(err, vault.ErrRefreshInvalid) {
			t.Errorf("refresh token issued with a reused code: %v", err)
		}
		if fam, err := tx.RefreshFamily(rt.FamilyID); err != nil || !fam.Revoked {
			t.Errorf("family: %+v, %v", fam, err)
		}
		if ok, err := tx.Revoked("jti-1"); err != nil || !ok {
			t.Errorf("access token issued with a reused code: revoked %v, %v", ok, err)
		}
		if ok, _ := tx.Revoked("other"); ok {
			t.Error("a write after the reuse was committed")
		}
		return nil
	})
	// Expired: invalid, not a reuse, whether or not it was removed yet.
	tv.Clock.Advance(time.Minute)
	if err := tv.Update(func(tx *vault.Tx) error { _, err := tx.RedeemAuthCode(code); return err }); !errors.Is(err, vault.ErrCodeInvalid) || errors.As(err, &reused) {
		t.Errorf("expired code = %v, want ErrCodeInvalid alone", err)
	}
	if err := tv.Update(func(tx *vault.Tx) error { _, err := tx.RedeemAuthCode(randomCode(t)); return err }); !errors.Is(err, vault.ErrCodeInvalid) {
		t.Errorf("unknown code = %v", err)
	}
}

// TestRedeemAuthCodeGrantGone: a code whose user was disabled or removed,
// whose client was removed, or whose grant was revoked, is invalid.
func TestRedeemAuthCodeGrantGone(t *testing.T) {
	for _, c := range grantGone {
		t.Run(c.name, func(t *testing.T) {
			f := newFlow(t)
			code := f.newCode(t)
			f.tv.update(t, func(tx *vault.Tx) error { return c.gone(f, tx) })
			err := f.tv.Update(func(tx *vault.Tx) error { _, err := tx.RedeemAuthCode(code); return err })
			if !errors.Is(err, vault.ErrCodeInvalid) {
				t.Errorf("RedeemAuthCode = %v, want ErrCodeInvalid", err)
			}
		})
	}
}

func TestRecordAuthCodeIssue(t *testing.T) {
	f := newFlow(t)
	tv := f.tv
	code := f.newCode(t)
	jti := vault.IssuedToken{JTI: "jti-1", ExpiresAt: tv.Clock.Now().Add(time.Hour)}
	for _, c := range []struct {
		name   string
		code   string
		family string
		tokens []vault.IssuedToken
		redeem bool
		fail   bool
	}{
		{"not redeemed", code, "rtf_abcdefghijklmnopqrstuv", nil, false, true},
		{"unknown code", randomCode(t), "", []vault.IssuedToken{jti}, false, true},
		{"redeemed", code, "rtf_abcdefghijklmnopqrstuv", []vault.IssuedToken{jti}, true, false},
		{"another family", code, "rtf_bbcdefghijklmnopqrstuv", nil, false, true},
		{"a token without jti", code, "", []vault.IssuedToken{{}}, false, true},
		{"one more token", code, "", []vault.IssuedToken{{JTI: "jti-2"}}, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := tv.Update(func(tx *vault.Tx) error {
				if c.redeem {
					if _, err := tx.RedeemAuthCode(c.code); err != nil {
						return err
					}
				}
				return tx.RecordAuthCodeIssue(c.code, c.family, c.tokens...)
			})
			if (err != nil) != c.fail {
				t.Errorf("RecordAuthCodeIssue = %v, want failure %v", err, c.fail)
			}
			noSecretIn(t, err, c.code)
		})
	}
	err := tv.Update(func(tx *vault.Tx) error { _, err := tx.RedeemAuthCode(code); return err })
	var reused *vault.CodeReusedError
	if !errors.As(err, &reused) || reused.Code.FamilyID != "rtf_abcdefghijklmnopqrstuv" || len(reused.Code.AccessTokens) != 2 {
		t.Fatalf("reuse = %v", err)
	}
	tv.view(t, func(tx *vault.Tx) error {
		for _, jti := range []string{"jti-1", "jti-2"} {
			if ok, err := tx.Revoked(jti); err != nil || !ok {
				t.Errorf("%s: %v, %v", jti, ok, err)
			}
		}
		return nil
	})
}

// TestRedeemAuthCodeConcurrently: of many redemptions of one code at once,
// exactly one succeeds; every other is a reuse.
func TestRedeemAuthCodeConcurrently(t *testing.T) {
	f := newFlow(t)
	code := f.newCode(t)
	const n = 8
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			errs <- f.tv.Update(func(tx *vault.Tx) error {
				_, err := tx.RedeemAuthCode(code)
				return err
			})
		})
	}
	wg.Wait()
	close(errs)
	ok, reused := 0, 0
	for err := range errs {
		var r *vault.CodeReusedError
		switch {
		case err == nil:
			ok++
		case errors.As(err, &r):
			reused++
		default:
			t.Errorf("redemption: %v", err)
		}
	}
	if ok != 1 || reused != n-1 {
		t.Errorf("%d redemptions succeeded and %d were reuses, want 1 and %d", ok, reused, n-1)
	}
}
