package vault_test

import (
	"errors"
	"testing"
	"time"

	"github.com/keymint/keymint/vault"
)

// TestRotateExpired: a credential whose expiry has passed is refused a new
// secret with an ExpiredError naming it and its expiry, and the vault is
// left as it was; until then it rotates as usual.
func TestRotateExpired(t *testing.T) {
	for _, ops := range allKinds {
		t.Run(ops.kind, func(t *testing.T) {
			tv := newTestVault(t)
			expires := epoch.Add(time.Hour)
			old := newSecret(t, ops.prefix)
			var id string
			tv.update(t, func(tx *vault.Tx) error {
				cred := vault.Credential{Name: "svc", ExpiresAt: &expires}
				if ops.kind == "client" {
					c := &vault.Client{Credential: cred, GrantTypes: []string{"client_credentials"}, TokenTTL: time.Hour}
					err := tx.CreateClient(c, old)
					id = c.ID
					return err
				}
				k := &vault.Key{Credential: cred}
				err := tx.CreateKey(k, old)
				id = k.ID
				return err
			})

			// A minute before its expiry it still rotates.
			tv.Clock.Advance(59 * time.Minute)
			fresh := newSecret(t, ops.prefix)
			tv.update(t, func(tx *vault.Tx) error { _, err := ops.rotate(tx, "svc", fresh, time.Hour); return err })

			// At its expiry, and after, it does not.
			for _, step := range []time.Duration{time.Minute, 24 * time.Hour} {
				tv.Clock.Advance(step)
				gen := tv.generation(t)
				var entries int
				tv.view(t, func(tx *vault.Tx) error {
					log, err := tx.AuditLog()
					entries = len(log)
					return err
				})
				err := tv.Update(func(tx *vault.Tx) error {
					_, err := ops.rotate(tx, "svc", newSecret(t, ops.prefix), time.Hour)
					return err
				})
				if !errors.Is(err, vault.ErrExpired) {
					t.Fatalf("rotate at expiry+%v = %v, want ErrExpired", tv.Clock.Now().Sub(expires), err)
				}
				var ee *vault.ExpiredError
				if !errors.As(err, &ee) || ee.Kind != vault.Kind(ops.kind) || ee.ID != id || ee.Name != "svc" || !ee.ExpiresAt.Equal(expires) {
					t.Errorf("error %#v does not name the %s and its expiry %v", ee, ops.kind, expires)
				}
				if want := ops.kind + " svc expired 2026-03-01T13:00:00Z"; err.Error() != want {
					t.Errorf("error %q, want %q", err, want)
				}
				if g := tv.generation(t); g != gen {
					t.Errorf("refused rotation changed the generation from %d to %d", gen, g)
				}
				tv.view(t, func(tx *vault.Tx) error {
					log, err := tx.AuditLog()
					if len(log) != entries {
						t.Errorf("refused rotation wrote %d audit entries", len(log)-entries)
					}
					c, gerr := ops.get(tx, "svc")
					if gerr != nil {
						return gerr
					}
					if len(c.Secrets) != 2 {
						t.Errorf("refused rotation left %d secrets, want the 2 it had", len(c.Secrets))
					}
					return err
				})
			}
		})
	}
}
