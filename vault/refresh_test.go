package vault_test

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keymint/keymint/vault"
)

func TestRefreshTokenPrefix(t *testing.T) {
	for _, c := range []struct{ key, want string }{{"km", "kmrt"}, {"acme", "acmert"}, {"", "kmrt"}} {
		if got := (vault.Settings{KeyPrefix: c.key}).RefreshTokenPrefix(); got != c.want {
			t.Errorf("key prefix %q: refresh prefix %q, want %q", c.key, got, c.want)
		}
	}
}

func TestCreateRefreshToken(t *testing.T) {
	f := newFlow(t)
	tv := f.tv
	var other *vault.User
	tv.update(t, func(tx *vault.Tx) error {
		other = &vault.User{Name: "bob", PasswordHash: testHash}
		return tx.CreateUser(other)
	})
	for _, c := range []struct {
		name   string
		token  string
		change func(rt *vault.RefreshToken)
		want   error
	}{
		{"new", newSecret(t, "kmrt"), func(*vault.RefreshToken) {}, nil},
		{"a client secret's prefix", newSecret(t, "kmcs"), func(*vault.RefreshToken) {}, errors.New("any")},
		{"malformed", "kmrt_not-a-secret", func(*vault.RefreshToken) {}, errors.New("any")},
		{"in a family already", newSecret(t, "kmrt"), func(rt *vault.RefreshToken) { rt.FamilyID = "rtf_abcdefghijklmnopqrstuv" }, errors.New("any")},
		{"expired", newSecret(t, "kmrt"), func(rt *vault.RefreshToken) { rt.ExpiresAt = tv.Clock.Now() }, errors.New("any")},
		{"unknown grant", newSecret(t, "kmrt"), func(rt *vault.RefreshToken) { rt.GrantID = "grt_abcdefghijklmnopqrstuv" }, vault.ErrNotFound},
		{"another user", newSecret(t, "kmrt"), func(rt *vault.RefreshToken) { rt.UserID, rt.ClientID = other.ID, f.client.ID }, vault.ErrNotFound},
	} {
		t.Run(c.name, func(t *testing.T) {
			rt := &vault.RefreshToken{GrantID: f.grant.ID, Scopes: []string{"openid"}, AuthTime: epoch, ExpiresAt: tv.Clock.Now().Add(time.Hour)}
			c.change(rt)
			gen := tv.generation(t)
			err := tv.Update(func(tx *vault.Tx) error { return tx.CreateRefreshToken(c.token, rt) })
			switch {
			case c.want == nil && err != nil, c.want != nil && err == nil:
				t.Fatalf("CreateRefreshToken = %v, want %v", err, c.want)
			case errors.Is(c.want, vault.ErrNotFound) && !errors.Is(err, c.want):
				t.Fatalf("CreateRefreshToken = %v, want %v", err, c.want)
			}
			noSecretIn(t, err, c.token)
			if got := tv.generation(t); got != gen {
				t.Errorf("generation %d -> %d: refresh tokens are usage data", gen, got)
			}
			if c.want != nil {
				return
			}
			if !strings.HasPrefix(rt.FamilyID, "rtf_") || rt.UserID != f.user.ID || rt.ClientID != f.client.ID || !rt.CreatedAt.Equal(tv.Clock.Now()) {
				t.Errorf("new token: %+v", rt)
			}
			tv.view(t, func(tx *vault.Tx) error {
				got, err := tx.RefreshToken(c.token)
				if err != nil || got.FamilyID != rt.FamilyID || !got.AuthTime.Equal(epoch) {
					t.Errorf("RefreshToken = %+v, %v", got, err)
				}
				return nil
			})
		})
	}
}

// TestRotateRefreshToken: each exchange gives a token of the same family,
// grant and scopes, living as long as the one it replaces; the old one is
// no longer accepted.
func TestRotateRefreshToken(t *testing.T) {
	f := newFlow(t)
	tv := f.tv
	token, first := f.newRefresh(t)
	for i := range 3 {
		tv.Clock.Advance(time.Hour)
		next := newSecret(t, "kmrt")
		var rt *vault.RefreshToken
		gen := tv.generation(t)
		tv.update(t, func(tx *vault.Tx) (err error) { rt, err = tx.RotateRefreshToken(token, next); return err })
		if tv.generation(t) != gen {
			t.Errorf("rotation %d advanced the generation", i)
		}
		now := tv.Clock.Now()
		if rt.FamilyID != first.FamilyID || rt.GrantID != f.grant.ID || !slices.Equal(rt.Scopes, first.Scopes) ||
			!rt.AuthTime.Equal(first.AuthTime) || !rt.CreatedAt.Equal(now) || !rt.ExpiresAt.Equal(now.Add(24*time.Hour)) || rt.RotatedAt != nil {
			t.Errorf("rotation %d: %+v", i, rt)
		}
		tv.view(t, func(tx *vault.Tx) error {
			if _, err := tx.RefreshToken(token); !errors.Is(err, vault.ErrRefreshInvalid) {
				t.Errorf("rotated token: %v", err)
			}
			if _, err := tx.RefreshToken(next); err != nil {
				t.Errorf("new token: %v", err)
			}
			return nil
		})
		token = next
	}
	for _, c := range []struct{ name, old, new string }{
		{"unknown", newSecret(t, "kmrt"), newSecret(t, "kmrt")},
		{"malformed", "kmrt_nope", newSecret(t, "kmrt")},
		{"new token malformed", token, "kmrt_nope"},
		{"new token of another kind", token, newSecret(t, "km")},
	} {
		err := tv.Update(func(tx *vault.Tx) error { _, err := tx.RotateRefreshToken(c.old, c.new); return err })
		if err == nil {
			t.Errorf("%s: rotated", c.name)
		}
		noSecretIn(t, err, c.old)
		noSecretIn(t, err, c.new)
	}
	tv.view(t, func(tx *vault.Tx) error {
		_, err := tx.RefreshToken(token)
		if err != nil {
			t.Errorf("the current token after refused rotations: %v", err)
		}
		return nil
	})
}

// TestRefreshReuse: a rotated token presented again revokes its whole
// family, even if the request then fails; the family's current token stops
// working.
func TestRefreshReuse(t *testing.T) {
	f := newFlow(t)
	tv := f.tv
	stolen, _ := f.newRefresh(t)
	current := newSecret(t, "kmrt")
	tv.update(t, func(tx *vault.Tx) error { _, err := tx.RotateRefreshToken(stolen, current); return err })
	other, _ := f.newRefresh(t) // another sign-in: another family, untouched
	tv.Clock.Advance(time.Minute)
	n := tv.auditLen(t)
	var err error
	errInvalidGrant := errors.New("invalid_grant")
	if got := tv.Update(func(tx *vault.Tx) error {
		_, err = tx.RotateRefreshToken(stolen, newSecret(t, "kmrt"))
		return errInvalidGrant
	}); got != errInvalidGrant {
		t.Errorf("Update = %v, want the function's error", got)
	}
	var reused *vault.RefreshReusedError
	if !errors.As(err, &reused) || !errors.Is(err, vault.ErrRefreshInvalid) || reused.UserID != f.user.ID || reused.ClientID != f.client.ID {
		t.Fatalf("reuse = %v, want a RefreshReusedError", err)
	}
	noSecretIn(t, err, stolen)
	if got := tv.auditActions(t, n); !slices.Equal(got, []string{"refresh.revoke"}) {
		t.Errorf("audit: %v", got)
	}
	tv.view(t, func(tx *vault.Tx) error {
		if _, err := tx.RefreshToken(current); !errors.Is(err, vault.ErrRefreshInvalid) {
			t.Errorf("the family's current token after a reuse: %v", err)
		}
		if fam, err := tx.RefreshFamily(reused.FamilyID); err != nil || !fam.Revoked || fam.RevokedAt == nil {
			t.Errorf("family: %+v, %v", fam, err)
		}
		if _, err := tx.RefreshToken(other); err != nil {
			t.Errorf("another family's token: %v", err)
		}
		return nil
	})
	// Presented again: the family is revoked already; invalid, no new report.
	err = tv.Update(func(tx *vault.Tx) error { _, err := tx.RotateRefreshToken(stolen, newSecret(t, "kmrt")); return err })
	if !errors.Is(err, vault.ErrRefreshInvalid) || errors.As(err, &reused) {
		t.Errorf("reuse in a revoked family = %v, want ErrRefreshInvalid alone", err)
	}
	if err := tv.Update(func(tx *vault.Tx) error { _, err := tx.RotateRefreshToken(current, newSecret(t, "kmrt")); return err }); !errors.Is(err, vault.ErrRefreshInvalid) {
		t.Errorf("rotating a revoked family's current token = %v", err)
	}
}

// TestRefreshExpiry: an expired token is invalid, rotated or not, and its
// family is not revoked for it.
func TestRefreshExpiry(t *testing.T) {
	f := newFlow(t)
	tv := f.tv
	old, _ := f.newRefresh(t)
	current := newSecret(t, "kmrt")
	tv.Clock.Advance(12 * time.Hour)
	var rt *vault.RefreshToken
	tv.update(t, func(tx *vault.Tx) (err error) { rt, err = tx.RotateRefreshToken(old, current); return err })
	tv.Clock.Advance(12 * time.Hour) // old has expired, current has not
	err := tv.Update(func(tx *vault.Tx) error { _, err := tx.RotateRefreshToken(old, newSecret(t, "kmrt")); return err })
	var reused *vault.RefreshReusedError
	if !errors.Is(err, vault.ErrRefreshInvalid) || errors.As(err, &reused) {
		t.Errorf("an expired rotated token = %v, want ErrRefreshInvalid alone", err)
	}
	tv.view(t, func(tx *vault.Tx) error {
		if _, err := tx.RefreshToken(current); err != nil {
			t.Errorf("current token after an expired one was presented: %v", err)
		}
		return nil
	})
	tv.Clock.Advance(12 * time.Hour)
	err = tv.Update(func(tx *vault.Tx) error { _, err := tx.RotateRefreshToken(current, newSecret(t, "kmrt")); return err })
	if !errors.Is(err, vault.ErrRefreshInvalid) {
		t.Errorf("an expired current token = %v", err)
	}
	// Both are removed by the writes that follow, and then their family.
	for range 3 {
		f.newCode(t)
	}
	tv.view(t, func(tx *vault.Tx) error {
		if _, err := tx.RefreshFamily(rt.FamilyID); !errors.Is(err, vault.ErrNotFound) {
			t.Errorf("the family of expired tokens: %v, want it removed", err)
		}
		return nil
	})
	if recs := tv.records(t); recs["refresh"] != 0 || recs["families"] != 0 {
		t.Errorf("records: %v", recs)
	}
}

func TestRevokeRefreshFamily(t *testing.T) {
	f := newFlow(t)
	tv := f.tv
	token, rt := f.newRefresh(t)
	gen := tv.generation(t)
	tv.update(t, func(tx *vault.Tx) error { return tx.RevokeRefreshFamily(rt.FamilyID) })
	tv.update(t, func(tx *vault.Tx) error { return tx.RevokeRefreshFamily(rt.FamilyID) }) // again: nothing
	if got := tv.generation(t); got != gen {
		t.Errorf("generation %d -> %d", gen, got)
	}
	tv.view(t, func(tx *vault.Tx) error {
		if _, err := tx.RefreshToken(token); !errors.Is(err, vault.ErrRefreshInvalid) {
			t.Errorf("token of a revoked family: %v", err)
		}
		return nil
	})
	if err := tv.Update(func(tx *vault.Tx) error { return tx.RevokeRefreshFamily("rtf_abcdefghijklmnopqrstuv") }); !errors.Is(err, vault.ErrNotFound) {
		t.Errorf("unknown family: %v", err)
	}
}

// TestRefreshGrantGone: a token whose user was disabled or removed, whose
// client was removed, or whose grant was revoked, is invalid.
func TestRefreshGrantGone(t *testing.T) {
	for _, c := range grantGone {
		t.Run(c.name, func(t *testing.T) {
			f := newFlow(t)
			token, _ := f.newRefresh(t)
			f.tv.update(t, func(tx *vault.Tx) error { return c.gone(f, tx) })
			err := f.tv.Update(func(tx *vault.Tx) error { _, err := tx.RotateRefreshToken(token, newSecret(t, "kmrt")); return err })
			if !errors.Is(err, vault.ErrRefreshInvalid) {
				t.Errorf("RotateRefreshToken = %v, want ErrRefreshInvalid", err)
			}
		})
	}
}

// TestRotateConcurrently: of many exchanges of one refresh token at once,
// one succeeds and the others are reuses, which revoke the family: two
// parties holding one token cannot both go on.
func TestRotateConcurrently(t *testing.T) {
	f := newFlow(t)
	token, rt := f.newRefresh(t)
	const n = 8
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			errs <- f.tv.Update(func(tx *vault.Tx) error {
				_, err := tx.RotateRefreshToken(token, newSecret(t, "kmrt"))
				return err
			})
		})
	}
	wg.Wait()
	close(errs)
	ok, reused := 0, 0
	for err := range errs {
		var r *vault.RefreshReusedError
		switch {
		case err == nil:
			ok++
		case errors.As(err, &r):
			reused++
		case errors.Is(err, vault.ErrRefreshInvalid):
			// After the family was revoked by a reuse.
		default:
			t.Errorf("rotation: %v", err)
		}
	}
	if ok != 1 || reused != 1 {
		t.Errorf("%d rotations succeeded and %d were reported reuses, want 1 and 1", ok, reused)
	}
	f.tv.view(t, func(tx *vault.Tx) error {
		if fam, err := tx.RefreshFamily(rt.FamilyID); err != nil || !fam.Revoked {
			t.Errorf("family after concurrent rotations: %+v, %v", fam, err)
		}
		return nil
	})
}
