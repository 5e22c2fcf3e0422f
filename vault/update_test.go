package vault_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keymint/keymint/vault"
)

// TestUsableDisabled: a disabled credential is refused with a
// DisabledError naming it, but only to the holder of a right secret (or
// the operator naming it): a wrong or retired secret learns nothing of it.
func TestUsableDisabled(t *testing.T) {
	now := epoch
	good, other := []byte("good-mac-good-mac-good-mac-good!"), []byte("other-mac-other-mac-other-mac-!!")
	c := &vault.Credential{ID: "cl_x", Name: "off", Disabled: true, Secrets: []vault.SecretHash{{MAC: good}}}
	for _, tt := range []struct {
		name string
		mac  []byte
		want error
	}{
		{"right secret", good, vault.ErrDisabled},
		{"named", nil, vault.ErrDisabled},
		{"wrong secret", other, vault.ErrWrongSecret},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := vault.Usable(vault.KindClient, c, tt.mac, now)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Usable = %v, want %v", err, tt.want)
			}
			if tt.want == vault.ErrDisabled {
				var de *vault.DisabledError
				if !errors.As(err, &de) || de.Kind != vault.KindClient || de.ID != "cl_x" || de.Name != "off" {
					t.Errorf("error %#v does not name the client", err)
				}
				if err.Error() != "client off is disabled" {
					t.Errorf("message %q", err)
				}
				if errors.Is(err, vault.ErrExpired) || errors.Is(err, vault.ErrNotFound) {
					t.Errorf("%v is also expired or not found", err)
				}
			}
		})
	}
	c.Disabled = false
	if err := vault.Usable(vault.KindClient, c, good, now); err != nil {
		t.Errorf("enabled: Usable = %v", err)
	}
}

func ptr[T any](v T) *T { return &v }

// TestUpdateKey: each field of an update, what it says changed, nothing
// written for no change, the generation advanced and one audit entry for
// a change, a disabled key refused by its secret and an expired one
// given a new expiry usable again.
func TestUpdateKey(t *testing.T) {
	tv := newTestVault(t)
	secret := newSecret(t, "km")
	soon := epoch.Add(time.Hour)
	tv.update(t, func(tx *vault.Tx) error {
		return tx.CreateKey(&vault.Key{Credential: vault.Credential{Name: "svc", Scopes: []string{"a"}, ExpiresAt: &soon}}, secret)
	})
	later := epoch.Add(90 * 24 * time.Hour)
	var noExpiry *time.Time
	for _, tt := range []struct {
		name    string
		u       vault.CredentialUpdate
		changes []string // FieldChange.String()
		check   func(*vault.Key) bool
	}{
		{"scopes", vault.CredentialUpdate{Scopes: &[]string{"a", "b"}}, []string{"scopes a -> a b"},
			func(k *vault.Key) bool { return slices.Equal(k.Scopes, []string{"a", "b"}) }},
		{"same scopes", vault.CredentialUpdate{Scopes: &[]string{"a", "b"}}, nil, nil},
		{"no scopes", vault.CredentialUpdate{Scopes: &[]string{}}, []string{"scopes a b -> (none)"},
			func(k *vault.Key) bool { return len(k.Scopes) == 0 }},
		{"expiry", vault.CredentialUpdate{Expiry: ptr(&later)}, []string{"expires 2026-03-01T13:00:00Z -> 2026-05-30T12:00:00Z"},
			func(k *vault.Key) bool { return k.ExpiresAt.Equal(later) }},
		{"expiry never", vault.CredentialUpdate{Expiry: &noExpiry}, []string{"expires 2026-05-30T12:00:00Z -> never"},
			func(k *vault.Key) bool { return k.ExpiresAt == nil }},
		{"never again", vault.CredentialUpdate{Expiry: &noExpiry}, nil, nil},
		{"disable", vault.CredentialUpdate{Disabled: ptr(true)}, []string{"disabled"},
			func(k *vault.Key) bool { return k.Disabled }},
		{"disable again", vault.CredentialUpdate{Disabled: ptr(true)}, nil, nil},
		{"enable and scope", vault.CredentialUpdate{Disabled: ptr(false), Scopes: &[]string{"c"}}, []string{"scopes (none) -> c", "enabled"},
			func(k *vault.Key) bool { return !k.Disabled && slices.Equal(k.Scopes, []string{"c"}) }},
		{"nothing", vault.CredentialUpdate{}, nil, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			gen := tv.generation(t)
			var entries int
			tv.view(t, func(tx *vault.Tx) error {
				log, err := tx.AuditLog()
				entries = len(log)
				return err
			})
			var k *vault.Key
			var changes []vault.FieldChange
			tv.update(t, func(tx *vault.Tx) (err error) {
				k, changes, err = tx.UpdateKey("svc", vault.KeyUpdate{CredentialUpdate: tt.u})
				return err
			})
			var got []string
			for _, c := range changes {
				got = append(got, c.String())
			}
			if !slices.Equal(got, tt.changes) {
				t.Fatalf("changes %q, want %q", got, tt.changes)
			}
			var log []vault.AuditEntry
			tv.view(t, func(tx *vault.Tx) (err error) {
				stored, err := tx.Key("svc")
				if err == nil && tt.check != nil && !tt.check(stored) {
					t.Errorf("stored key %+v", stored)
				}
				log, err = tx.AuditLog()
				return err
			})
			if tt.check != nil && !tt.check(k) {
				t.Errorf("returned key %+v", k)
			}
			if len(tt.changes) == 0 {
				if g := tv.generation(t); g != gen {
					t.Errorf("no change: generation %d -> %d", gen, g)
				}
				if len(log) != entries {
					t.Errorf("no change: %d audit entries, want %d", len(log), entries)
				}
				return
			}
			if g := tv.generation(t); g != gen+1 {
				t.Errorf("generation %d -> %d, want one more", gen, g)
			}
			if len(log) != entries+1 {
				t.Fatalf("%d audit entries, want %d", len(log), entries+1)
			}
			e := log[len(log)-1]
			if e.Action != "key.update" || e.ID != k.ID || !strings.HasPrefix(e.Detail, "svc: ") || strings.Contains(e.Detail, secret) {
				t.Errorf("audit entry %+v", e)
			}
		})
	}

	// Disabled: the right secret is refused with a DisabledError, by the
	// lookup by secret as by Usable; enabled, it works again.
	setDisabled := func(d bool) {
		tv.update(t, func(tx *vault.Tx) error {
			_, _, err := tx.UpdateKey("svc", vault.KeyUpdate{CredentialUpdate: vault.CredentialUpdate{Disabled: &d}})
			return err
		})
	}
	bySecret := func() error {
		return tv.View(func(tx *vault.Tx) error { _, err := tx.KeyBySecret(secret); return err })
	}
	setDisabled(true)
	var de *vault.DisabledError
	if err := bySecret(); !errors.As(err, &de) || de.Name != "svc" {
		t.Errorf("disabled: KeyBySecret = %v, want a DisabledError", err)
	}
	// A disabled key may be rotated, and stays disabled.
	secret = newSecret(t, "km")
	tv.update(t, func(tx *vault.Tx) error {
		k, err := tx.RotateKey("svc", secret, time.Hour)
		if err == nil && !k.Disabled {
			t.Error("rotated key is no longer disabled")
		}
		return err
	})
	setDisabled(false)
	if err := bySecret(); err != nil {
		t.Errorf("enabled: KeyBySecret = %v", err)
	}

	// Expired, then given a new expiry: usable again.
	tv.update(t, func(tx *vault.Tx) error {
		_, _, err := tx.UpdateKey("svc", vault.KeyUpdate{CredentialUpdate: vault.CredentialUpdate{Expiry: ptr(&soon)}})
		return err
	})
	tv.Clock.Advance(2 * time.Hour)
	if err := bySecret(); !errors.Is(err, vault.ErrExpired) {
		t.Fatalf("expired: KeyBySecret = %v", err)
	}
	tv.update(t, func(tx *vault.Tx) error {
		_, _, err := tx.UpdateKey("svc", vault.KeyUpdate{CredentialUpdate: vault.CredentialUpdate{Expiry: ptr(&later)}})
		return err
	})
	if err := bySecret(); err != nil {
		t.Errorf("given a new expiry: KeyBySecret = %v", err)
	}

	// An unknown name: not found, nothing written.
	if err := tv.Update(func(tx *vault.Tx) error {
		_, _, err := tx.UpdateKey("nope", vault.KeyUpdate{})
		return err
	}); !errors.Is(err, vault.ErrNotFound) {
		t.Errorf("unknown key: %v", err)
	}
}

// TestUpdateClient: the client's own fields, and what an update may not
// leave behind.
func TestUpdateClient(t *testing.T) {
	tv := newTestVault(t)
	tv.update(t, func(tx *vault.Tx) error {
		if err := tx.CreateClient(&vault.Client{Credential: vault.Credential{Name: "cc", Scopes: []string{"a"}},
			GrantTypes: []string{"client_credentials"}, TokenTTL: time.Hour}, newSecret(t, "kmcs")); err != nil {
			return err
		}
		return tx.CreateClient(&vault.Client{Credential: vault.Credential{Name: "web"},
			GrantTypes: []string{"authorization_code"}, RedirectURIs: []string{"https://a.example/cb"}, TokenTTL: time.Hour}, newSecret(t, "kmcs"))
	})
	for _, tt := range []struct {
		name, ref string
		u         vault.ClientUpdate
		changes   []string
		wantErr   bool
	}{
		{"ttl", "cc", vault.ClientUpdate{TokenTTL: ptr(30 * time.Minute)}, []string{"token_ttl 1h0m0s -> 30m0s"}, false},
		{"same ttl", "cc", vault.ClientUpdate{TokenTTL: ptr(30 * time.Minute)}, nil, false},
		{"zero ttl", "cc", vault.ClientUpdate{TokenTTL: ptr(time.Duration(0))}, nil, true},
		{"negative ttl", "cc", vault.ClientUpdate{TokenTTL: ptr(-time.Second)}, nil, true},
		{"audience", "cc", vault.ClientUpdate{Audience: &[]string{"https://api.example"}}, []string{"audience (none) -> https://api.example"}, false},
		{"description", "cc", vault.ClientUpdate{Description: ptr("batch jobs")}, []string{"description (none) -> batch jobs"}, false},
		{"redirect uri on client_credentials", "cc", vault.ClientUpdate{RedirectURIs: &[]string{"https://a.example/cb"}}, nil, true},
		{"redirect uris", "web", vault.ClientUpdate{RedirectURIs: &[]string{"https://a.example/cb", "https://b.example/cb"}},
			[]string{"redirect_uris https://a.example/cb -> https://a.example/cb https://b.example/cb"}, false},
		{"no redirect uri left", "web", vault.ClientUpdate{RedirectURIs: &[]string{}}, nil, true},
		{"disable", "web", vault.ClientUpdate{CredentialUpdate: vault.CredentialUpdate{Disabled: ptr(true)}}, []string{"disabled"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			gen := tv.generation(t)
			var changes []vault.FieldChange
			err := tv.Update(func(tx *vault.Tx) (err error) {
				_, changes, err = tx.UpdateClient(tt.ref, tt.u)
				return err
			})
			if tt.wantErr {
				if !errors.Is(err, vault.ErrInvalidUpdate) {
					t.Fatalf("err = %v, want ErrInvalidUpdate", err)
				}
				if g := tv.generation(t); g != gen {
					t.Errorf("refused: generation %d -> %d", gen, g)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range changes {
				got = append(got, c.String())
			}
			if !slices.Equal(got, tt.changes) {
				t.Fatalf("changes %q, want %q", got, tt.changes)
			}
		})
	}
	tv.view(t, func(tx *vault.Tx) error {
		c, err := tx.Client("cc")
		if err != nil {
			return err
		}
		if c.TokenTTL != 30*time.Minute || c.Description != "batch jobs" || !slices.Equal(c.Audience, []string{"https://api.example"}) || !slices.Equal(c.Scopes, []string{"a"}) {
			t.Errorf("stored client %+v", c)
		}
		w, err := tx.Client("web")
		if err != nil {
			return err
		}
		if !w.Disabled || len(w.RedirectURIs) != 2 {
			t.Errorf("stored client %+v", w)
		}
		return nil
	})
}
