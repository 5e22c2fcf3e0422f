package vault_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keymint/keymint/vault"
)

// kindOps gives the key and client methods of Tx one shape, so the round
// trips are written once and run for both kinds.
type kindOps struct {
	kind     string
	prefix   string // secret prefix
	create   func(tx *vault.Tx, name, secret string) (*vault.Credential, error)
	get      func(tx *vault.Tx, ref string) (*vault.Credential, error)
	list     func(tx *vault.Tx) ([]*vault.Credential, error)
	rename   func(tx *vault.Tx, ref, name string) (*vault.Credential, error)
	rotate   func(tx *vault.Tx, ref, secret string, grace time.Duration) (*vault.Credential, error)
	del      func(tx *vault.Tx, refs ...string) ([]*vault.Credential, error)
	bySecret func(tx *vault.Tx, secret string) (*vault.Credential, error)
	touch    func(tx *vault.Tx, id string) error
}

func cred[T interface{ *vault.Key | *vault.Client }](r T, err error) (*vault.Credential, error) {
	if err != nil {
		return nil, err
	}
	switch r := any(r).(type) {
	case *vault.Key:
		return &r.Credential, nil
	case *vault.Client:
		return &r.Credential, nil
	}
	panic("unreachable")
}

func creds[T interface{ *vault.Key | *vault.Client }](rs []T, err error) ([]*vault.Credential, error) {
	var out []*vault.Credential
	for _, r := range rs {
		c, _ := cred(r, nil)
		out = append(out, c)
	}
	return out, err
}

var keyOps = kindOps{
	kind:   "key",
	prefix: "km",
	create: func(tx *vault.Tx, name, secret string) (*vault.Credential, error) {
		k := &vault.Key{Credential: vault.Credential{Name: name, Scopes: []string{"invoices:read"}}}
		return cred(k, tx.CreateKey(k, secret))
	},
	get:  func(tx *vault.Tx, ref string) (*vault.Credential, error) { return cred(tx.Key(ref)) },
	list: func(tx *vault.Tx) ([]*vault.Credential, error) { return creds(tx.Keys()) },
	rename: func(tx *vault.Tx, ref, name string) (*vault.Credential, error) {
		return cred(tx.RenameKey(ref, name))
	},
	rotate: func(tx *vault.Tx, ref, secret string, grace time.Duration) (*vault.Credential, error) {
		return cred(tx.RotateKey(ref, secret, grace))
	},
	del: func(tx *vault.Tx, refs ...string) ([]*vault.Credential, error) {
		return creds(tx.DeleteKeys(refs...))
	},
	bySecret: func(tx *vault.Tx, s string) (*vault.Credential, error) { return cred(tx.KeyBySecret(s)) },
	touch:    func(tx *vault.Tx, id string) error { return tx.TouchKey(id) },
}

var clientOps = kindOps{
	kind:   "client",
	prefix: "kmcs",
	create: func(tx *vault.Tx, name, secret string) (*vault.Credential, error) {
		c := &vault.Client{
			Credential: vault.Credential{Name: name, Scopes: []string{"invoices:read"}},
			GrantTypes: []string{"client_credentials"},
			TokenTTL:   time.Hour,
		}
		return cred(c, tx.CreateClient(c, secret))
	},
	get:  func(tx *vault.Tx, ref string) (*vault.Credential, error) { return cred(tx.Client(ref)) },
	list: func(tx *vault.Tx) ([]*vault.Credential, error) { return creds(tx.Clients()) },
	rename: func(tx *vault.Tx, ref, name string) (*vault.Credential, error) {
		return cred(tx.RenameClient(ref, name))
	},
	rotate: func(tx *vault.Tx, ref, secret string, grace time.Duration) (*vault.Credential, error) {
		return cred(tx.RotateClient(ref, secret, grace))
	},
	del: func(tx *vault.Tx, refs ...string) ([]*vault.Credential, error) {
		return creds(tx.DeleteClients(refs...))
	},
	bySecret: func(tx *vault.Tx, s string) (*vault.Credential, error) { return cred(tx.ClientBySecret(s)) },
	touch:    func(tx *vault.Tx, id string) error { return tx.TouchClient(id) },
}

var allKinds = []kindOps{keyOps, clientOps}

func names(cs []*vault.Credential) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	for _, ops := range allKinds {
		t.Run(ops.kind, func(t *testing.T) {
			tv := newTestVault(t)
			secrets := map[string]string{}
			ids := map[string]string{}
			// Created out of order: List sorts by name.
			for _, name := range []string{"charlie", "alpha", "bravo"} {
				secrets[name] = newSecret(t, ops.prefix)
				tv.update(t, func(tx *vault.Tx) error {
					c, err := ops.create(tx, name, secrets[name])
					if err != nil {
						return err
					}
					ids[name] = c.ID
					return nil
				})
				tv.Clock.Advance(time.Minute)
			}
			wantPrefix := map[string]string{"key": "key_", "client": "cl_"}[ops.kind]
			for name, id := range ids {
				if !strings.HasPrefix(id, wantPrefix) {
					t.Errorf("id of %s = %q, want prefix %q", name, id, wantPrefix)
				}
			}

			tv.view(t, func(tx *vault.Tx) error {
				for _, ref := range []string{"alpha", ids["alpha"]} {
					c, err := ops.get(tx, ref)
					if err != nil {
						t.Fatalf("get(%q): %v", ref, err)
					}
					if c.ID != ids["alpha"] || c.Name != "alpha" {
						t.Errorf("get(%q) = %s %s, want %s alpha", ref, c.ID, c.Name, ids["alpha"])
					}
					if !c.CreatedAt.Equal(epoch.Add(time.Minute)) {
						t.Errorf("CreatedAt = %v, want %v", c.CreatedAt, epoch.Add(time.Minute))
					}
					if !slices.Equal(c.Scopes, []string{"invoices:read"}) {
						t.Errorf("Scopes = %q", c.Scopes)
					}
					if len(c.Secrets) != 1 || c.LastUsedAt != nil {
						t.Errorf("Secrets = %d, LastUsedAt = %v; want 1, nil", len(c.Secrets), c.LastUsedAt)
					}
				}
				for _, ref := range []string{"delta", wantPrefix + "0000000000000000000000"} {
					if _, err := ops.get(tx, ref); !errors.Is(err, vault.ErrNotFound) {
						t.Errorf("get(%q) = %v, want ErrNotFound", ref, err)
					}
				}
				all, err := ops.list(tx)
				if err != nil {
					t.Fatal(err)
				}
				if got := names(all); !slices.Equal(got, []string{"alpha", "bravo", "charlie"}) {
					t.Errorf("list = %q, want sorted alpha bravo charlie", got)
				}
				for name, s := range secrets {
					c, err := ops.bySecret(tx, s)
					if err != nil || c.Name != name {
						t.Errorf("bySecret(secret of %s) = %v, %v", name, c, err)
					}
				}
				return nil
			})

			// Rename: the id and secret stay, the old name is free.
			tv.update(t, func(tx *vault.Tx) error {
				c, err := ops.rename(tx, "alpha", "zulu")
				if err != nil {
					return err
				}
				if c.ID != ids["alpha"] || c.Name != "zulu" {
					t.Errorf("rename returned %s %s", c.ID, c.Name)
				}
				return nil
			})
			tv.view(t, func(tx *vault.Tx) error {
				if _, err := ops.get(tx, "alpha"); !errors.Is(err, vault.ErrNotFound) {
					t.Errorf("get(old name) = %v, want ErrNotFound", err)
				}
				for _, ref := range []string{"zulu", ids["alpha"]} {
					if c, err := ops.get(tx, ref); err != nil || c.Name != "zulu" {
						t.Errorf("get(%q) after rename = %v, %v", ref, c, err)
					}
				}
				if c, err := ops.bySecret(tx, secrets["alpha"]); err != nil || c.Name != "zulu" {
					t.Errorf("bySecret after rename = %v, %v", c, err)
				}
				all, _ := ops.list(tx)
				if got := names(all); !slices.Equal(got, []string{"bravo", "charlie", "zulu"}) {
					t.Errorf("list after rename = %q", got)
				}
				return nil
			})
			// Renaming to the same name is a no-op; to a bad name fails.
			tv.update(t, func(tx *vault.Tx) error {
				_, err := ops.rename(tx, "zulu", "zulu")
				return err
			})
			if err := tv.Update(func(tx *vault.Tx) error {
				_, err := ops.rename(tx, "zulu", "bad name")
				return err
			}); !errors.Is(err, vault.ErrInvalidName) {
				t.Errorf("rename to %q = %v, want ErrInvalidName", "bad name", err)
			}
			// The old name can be taken by a new credential.
			tv.update(t, func(tx *vault.Tx) error {
				_, err := ops.create(tx, "alpha", newSecret(t, ops.prefix))
				return err
			})

			// Touch records a use at the clock's time.
			tv.Clock.Advance(time.Hour)
			tv.update(t, func(tx *vault.Tx) error { return ops.touch(tx, ids["bravo"]) })
			tv.view(t, func(tx *vault.Tx) error {
				c, err := ops.get(tx, "bravo")
				if err != nil {
					return err
				}
				if c.LastUsedAt == nil || !c.LastUsedAt.Equal(tv.Clock.Now()) {
					t.Errorf("LastUsedAt = %v, want %v", c.LastUsedAt, tv.Clock.Now())
				}
				// The list carries last use too, and only where there was one.
				all, err := ops.list(tx)
				if err != nil {
					return err
				}
				for _, c := range all {
					if used := c.LastUsedAt != nil; used != (c.Name == "bravo") ||
						(used && !c.LastUsedAt.Equal(tv.Clock.Now())) {
						t.Errorf("list: %s LastUsedAt = %v", c.Name, c.LastUsedAt)
					}
				}
				return nil
			})

			// Delete by name and by id in one call.
			tv.update(t, func(tx *vault.Tx) error {
				gone, err := ops.del(tx, "bravo", ids["charlie"])
				if err != nil {
					return err
				}
				if got := names(gone); !slices.Equal(got, []string{"bravo", "charlie"}) {
					t.Errorf("deleted %q", got)
				}
				return nil
			})
			tv.view(t, func(tx *vault.Tx) error {
				for _, ref := range []string{"bravo", ids["bravo"], "charlie", ids["charlie"]} {
					if _, err := ops.get(tx, ref); !errors.Is(err, vault.ErrNotFound) {
						t.Errorf("get(%q) after delete = %v, want ErrNotFound", ref, err)
					}
				}
				for _, name := range []string{"bravo", "charlie"} {
					if _, err := ops.bySecret(tx, secrets[name]); !errors.Is(err, vault.ErrNotFound) {
						t.Errorf("bySecret(deleted %s) = %v, want ErrNotFound", name, err)
					}
				}
				all, _ := ops.list(tx)
				if got := names(all); !slices.Equal(got, []string{"alpha", "zulu"}) {
					t.Errorf("list after delete = %q", got)
				}
				return nil
			})
		})
	}
}

// TestRotate follows one credential through two rotations on the fake clock.
func TestRotate(t *testing.T) {
	for _, ops := range allKinds {
		t.Run(ops.kind, func(t *testing.T) {
			tv := newTestVault(t)
			s1, s2, s3, s4 := newSecret(t, ops.prefix), newSecret(t, ops.prefix), newSecret(t, ops.prefix), newSecret(t, ops.prefix)
			tv.update(t, func(tx *vault.Tx) error { _, err := ops.create(tx, "svc", s1); return err })

			valid := func(s string) bool {
				t.Helper()
				var ok bool
				tv.view(t, func(tx *vault.Tx) error {
					_, err := ops.bySecret(tx, s)
					if err != nil && !errors.Is(err, vault.ErrNotFound) {
						t.Fatalf("bySecret: %v", err)
					}
					ok = err == nil
					return nil
				})
				return ok
			}
			expect := func(when string, want map[string]bool) {
				t.Helper()
				for label, s := range map[string]string{"s1": s1, "s2": s2, "s3": s3, "s4": s4} {
					if got := valid(s); got != want[label] {
						t.Errorf("%s: %s valid = %v, want %v", when, label, got, want[label])
					}
				}
			}

			rotate := func(s string, grace time.Duration) *vault.Credential {
				t.Helper()
				var c *vault.Credential
				tv.update(t, func(tx *vault.Tx) error {
					var err error
					c, err = ops.rotate(tx, "svc", s, grace)
					return err
				})
				return c
			}

			expect("before rotation", map[string]bool{"s1": true})
			tv.Clock.Advance(time.Hour)
			rotate(s2, 24*time.Hour) // s1 retires at epoch+25h
			expect("start of grace", map[string]bool{"s1": true, "s2": true})

			tv.Clock.Advance(time.Hour)
			rotate(s3, 48*time.Hour) // s1 keeps its earlier end; s2 retires at epoch+50h
			expect("second rotation", map[string]bool{"s1": true, "s2": true, "s3": true})

			tv.Clock.Advance(23*time.Hour - time.Nanosecond) // epoch+25h-1ns
			expect("end of s1 grace", map[string]bool{"s1": true, "s2": true, "s3": true})
			tv.Clock.Advance(time.Nanosecond) // epoch+25h
			expect("s1 grace over", map[string]bool{"s2": true, "s3": true})

			// A zero grace retires every old secret at once and drops those
			// whose grace has passed.
			c := rotate(s4, 0)
			expect("zero grace", map[string]bool{"s4": true})
			if len(c.Secrets) != 1 {
				t.Errorf("after zero-grace rotation %d secrets kept, want 1", len(c.Secrets))
			}
			if c.Secrets[0].RetiresAt != nil || !c.Secrets[0].CreatedAt.Equal(tv.Clock.Now()) {
				t.Errorf("new secret = %+v", c.Secrets[0])
			}

			if err := tv.Update(func(tx *vault.Tx) error {
				_, err := ops.rotate(tx, "nosuch", newSecret(t, ops.prefix), time.Hour)
				return err
			}); !errors.Is(err, vault.ErrNotFound) {
				t.Errorf("rotate(missing) = %v, want ErrNotFound", err)
			}
			if err := tv.Update(func(tx *vault.Tx) error {
				_, err := ops.rotate(tx, "svc", "not-a-secret", time.Hour)
				return err
			}); err == nil {
				t.Error("rotate to a malformed secret succeeded")
			}
			expect("after failed rotations", map[string]bool{"s4": true})
		})
	}
}

func TestBySecret(t *testing.T) {
	tv := newTestVault(t)
	keySecret, clientSecret, retired := newSecret(t, "km"), newSecret(t, "kmcs"), newSecret(t, "km")
	tv.update(t, func(tx *vault.Tx) error {
		if _, err := keyOps.create(tx, "k", retired); err != nil {
			return err
		}
		if _, err := keyOps.rotate(tx, "k", keySecret, 0); err != nil {
			return err
		}
		_, err := clientOps.create(tx, "c", clientSecret)
		return err
	})
	unknown := newSecret(t, "km")
	flipped := []byte(keySecret)
	flipped[5] ^= 1 // a typo: the checksum no longer matches
	tests := []struct {
		name     string
		ops      kindOps
		secret   string
		wantName string // "" for ErrNotFound
	}{
		{"key good", keyOps, keySecret, "k"},
		{"client good", clientOps, clientSecret, "c"},
		{"key unknown", keyOps, unknown, ""},
		{"key retired", keyOps, retired, ""},
		{"key typo", keyOps, string(flipped), ""},
		{"key empty", keyOps, "", ""},
		{"key garbage", keyOps, "km_hello", ""},
		{"key with newline", keyOps, keySecret + "\n", ""},
		{"key secret as client", clientOps, keySecret, ""},
		{"client secret as key", keyOps, clientSecret, ""},
		{"client truncated", clientOps, clientSecret[:len(clientSecret)-1], ""},
	}
	tv.view(t, func(tx *vault.Tx) error {
		for _, tt := range tests {
			c, err := tt.ops.bySecret(tx, tt.secret)
			switch {
			case tt.wantName == "" && !errors.Is(err, vault.ErrNotFound):
				t.Errorf("%s: got %v, %v; want ErrNotFound", tt.name, c, err)
			case tt.wantName != "" && (err != nil || c.Name != tt.wantName):
				t.Errorf("%s: got %v, %v; want %s", tt.name, c, err, tt.wantName)
			}
			if err != nil && len(tt.secret) > 8 && strings.Contains(err.Error(), tt.secret) {
				t.Errorf("%s: error quotes the secret: %v", tt.name, err)
			}
		}
		return nil
	})
}

func TestNameUniqueness(t *testing.T) {
	tv := newTestVault(t)
	tv.update(t, func(tx *vault.Tx) error {
		for _, ops := range allKinds {
			for _, name := range []string{"shared", "other"} {
				if _, err := ops.create(tx, name, newSecret(t, ops.prefix)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	gen := tv.generation(t)
	for _, ops := range allKinds {
		if err := tv.Update(func(tx *vault.Tx) error {
			_, err := ops.create(tx, "shared", newSecret(t, ops.prefix))
			return err
		}); !errors.Is(err, vault.ErrNameTaken) {
			t.Errorf("%s: second create of %q = %v, want ErrNameTaken", ops.kind, "shared", err)
		}
		if err := tv.Update(func(tx *vault.Tx) error {
			_, err := ops.rename(tx, "other", "shared")
			return err
		}); !errors.Is(err, vault.ErrNameTaken) {
			t.Errorf("%s: rename onto a taken name = %v, want ErrNameTaken", ops.kind, err)
		}
		if err := tv.Update(func(tx *vault.Tx) error {
			_, err := ops.create(tx, "bad/name", newSecret(t, ops.prefix))
			return err
		}); !errors.Is(err, vault.ErrInvalidName) {
			t.Errorf("%s: create with a bad name = %v, want ErrInvalidName", ops.kind, err)
		}
	}
	if got := tv.generation(t); got != gen {
		t.Errorf("failed creates changed the generation: %d -> %d", gen, got)
	}
	tv.view(t, func(tx *vault.Tx) error {
		k, err := tx.Key("shared")
		if err != nil {
			return err
		}
		c, err := tx.Client("shared")
		if err != nil {
			return err
		}
		if k.ID == c.ID {
			t.Errorf("key and client share an id %s", k.ID)
		}
		for _, ops := range allKinds {
			all, _ := ops.list(tx)
			if got := names(all); !slices.Equal(got, []string{"other", "shared"}) {
				t.Errorf("%s list = %q", ops.kind, got)
			}
		}
		return nil
	})
}

func TestDeleteAllOrNothing(t *testing.T) {
	for _, ops := range allKinds {
		t.Run(ops.kind, func(t *testing.T) {
			tv := newTestVault(t)
			secret := newSecret(t, ops.prefix)
			tv.update(t, func(tx *vault.Tx) error { _, err := ops.create(tx, "a", secret); return err })
			gen := tv.generation(t)
			before := fileSum(t, tv.Path)

			err := tv.Update(func(tx *vault.Tx) error {
				_, err := ops.del(tx, "a", "missing")
				return err
			})
			if !errors.Is(err, vault.ErrNotFound) {
				t.Fatalf("delete(a, missing) = %v, want ErrNotFound", err)
			}
			if !strings.Contains(err.Error(), `"missing"`) {
				t.Errorf("error %q does not name the missing credential", err)
			}
			if fileSum(t, tv.Path) != before {
				t.Error("a failed delete changed the file")
			}
			if got := tv.generation(t); got != gen {
				t.Errorf("generation %d -> %d after a failed delete", gen, got)
			}
			tv.view(t, func(tx *vault.Tx) error {
				if _, err := ops.get(tx, "a"); err != nil {
					t.Errorf("get(a) after failed delete: %v", err)
				}
				if _, err := ops.bySecret(tx, secret); err != nil {
					t.Errorf("secret of a after failed delete: %v", err)
				}
				return nil
			})
		})
	}
}

// TestDeleteSameTwice names one credential twice, by name and by id, as
// `keymint key rm a key_...` may: it is removed once, not refused.
func TestDeleteSameTwice(t *testing.T) {
	for _, ops := range allKinds {
		t.Run(ops.kind, func(t *testing.T) {
			tv := newTestVault(t)
			var id string
			tv.update(t, func(tx *vault.Tx) error {
				c, err := ops.create(tx, "a", newSecret(t, ops.prefix))
				if err == nil {
					id = c.ID
				}
				return err
			})
			for _, byID := range []bool{false, true} {
				refs := []string{"a", "a"}
				if byID {
					refs[1] = id
				}
				tv.update(t, func(tx *vault.Tx) error {
					if _, err := ops.create(tx, "b", newSecret(t, ops.prefix)); err != nil {
						return err
					}
					return nil
				})
				err := tv.Update(func(tx *vault.Tx) error {
					gone, err := ops.del(tx, refs...)
					if err == nil && len(gone) != 1 {
						t.Errorf("delete(%q) removed %d, want 1", refs, len(gone))
					}
					return err
				})
				if err != nil {
					t.Fatalf("delete(%q) = %v, want it removed once", refs, err)
				}
				tv.update(t, func(tx *vault.Tx) error {
					_, err := ops.rename(tx, "b", "a")
					if err == nil {
						c, _ := ops.get(tx, "a")
						id = c.ID
					}
					return err
				})
			}
		})
	}
}

// TestSaveKeepsNameAndSecrets: SaveKey and SaveClient rewrite the other
// fields only, as documented, so a careless or stale caller cannot desync
// the name index or undo a rotation.
func TestSaveKeepsNameAndSecrets(t *testing.T) {
	tv := newTestVault(t)
	s1, s2 := newSecret(t, "km"), newSecret(t, "km")
	var stale *vault.Key
	tv.update(t, func(tx *vault.Tx) error {
		stale = &vault.Key{Credential: vault.Credential{Name: "k", Scopes: []string{"a"}}}
		return tx.CreateKey(stale, s1)
	})
	tv.update(t, func(tx *vault.Tx) error { _, err := tx.RotateKey("k", s2, 0); return err })

	// stale still carries s1 only; change scopes and, carelessly, the name.
	stale.Scopes = []string{"a", "b"}
	stale.Name = "renamed-by-accident"
	tv.update(t, func(tx *vault.Tx) error { return tx.SaveKey(stale) })

	tv.view(t, func(tx *vault.Tx) error {
		k, err := tx.Key("k")
		if err != nil {
			t.Fatalf("Key(k) after SaveKey: %v", err)
		}
		if !slices.Equal(k.Scopes, []string{"a", "b"}) {
			t.Errorf("Scopes = %q, want a b", k.Scopes)
		}
		if k.Name != "k" {
			t.Errorf("Name = %q, want k", k.Name)
		}
		if _, err := tx.KeyBySecret(s2); err != nil {
			t.Errorf("rotated-in secret after a stale SaveKey: %v", err)
		}
		if _, err := tx.KeyBySecret(s1); !errors.Is(err, vault.ErrNotFound) {
			t.Errorf("rotated-out secret after a stale SaveKey: %v, want ErrNotFound", err)
		}
		return nil
	})

	// Saving a record that is not in the vault fails.
	err := tv.Update(func(tx *vault.Tx) error {
		return tx.SaveClient(&vault.Client{Credential: vault.Credential{ID: "cl_00000000000000000000000", Name: "ghost"}})
	})
	if !errors.Is(err, vault.ErrNotFound) {
		t.Errorf("SaveClient(unknown) = %v, want ErrNotFound", err)
	}
}

// TestClientFields checks every client field survives the sealed round trip.
func TestClientFields(t *testing.T) {
	tv := newTestVault(t)
	exp := epoch.Add(90 * 24 * time.Hour)
	in := &vault.Client{
		Credential: vault.Credential{
			Name:      "web",
			Scopes:    []string{"a:read", "a:write"},
			Limits:    []vault.Limit{{Count: 10, Period: "second"}, {Count: 8000, Period: "month"}},
			ExpiresAt: &exp,
		},
		GrantTypes:   []string{"authorization_code"},
		RedirectURIs: []string{"https://app.example/cb"},
		Audience:     []string{"https://api.example"},
		TokenTTL:     15 * time.Minute,
		Description:  "the web app",
		URL:          "https://app.example",
		PolicyURL:    "https://app.example/privacy",
		TOSURL:       "https://app.example/tos",
	}
	tv.update(t, func(tx *vault.Tx) error { return tx.CreateClient(in, newSecret(t, "kmcs")) })
	tv.view(t, func(tx *vault.Tx) error {
		got, err := tx.Client("web")
		if err != nil {
			return err
		}
		if got.ExpiresAt == nil || !got.ExpiresAt.Equal(exp) || !got.CreatedAt.Equal(epoch) {
			t.Errorf("times: expires %v created %v", got.ExpiresAt, got.CreatedAt)
		}
		if !slices.Equal(got.Scopes, in.Scopes) || !slices.Equal(got.Limits, in.Limits) ||
			!slices.Equal(got.GrantTypes, in.GrantTypes) || !slices.Equal(got.RedirectURIs, in.RedirectURIs) ||
			!slices.Equal(got.Audience, in.Audience) || got.TokenTTL != in.TokenTTL ||
			got.Description != in.Description || got.URL != in.URL || got.PolicyURL != in.PolicyURL || got.TOSURL != in.TOSURL {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, in)
		}
		if got.Expired(exp.Add(-time.Nanosecond)) || !got.Expired(exp) {
			t.Error("Expired is wrong around ExpiresAt")
		}
		return nil
	})
}

func TestValidateName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"ci", true},
		{"Deploy-Bot_2.0", true},
		{"9lives", true},
		{strings.Repeat("x", 64), true},
		{"key_short", true},                  // too short to be an id
		{"cl_abc", true},                     // likewise
		{"key_0123456789abcdef", false},      // looks like a key id
		{"cl_0123456789abcdefABCDEF", false}, // looks like a client id
		{"", false},
		{strings.Repeat("x", 65), false},
		{"-leading-dash", false},
		{".hidden", false},
		{"_under", false},
		{"has space", false},
		{"slash/name", false},
		{"tab\tname", false},
		{"new\nline", false},
		{"ünïcode", false},
		{"semi;colon", false},
	}
	for _, tt := range tests {
		err := vault.ValidateName(tt.name)
		if tt.ok && err != nil {
			t.Errorf("ValidateName(%q) = %v, want ok", tt.name, err)
		}
		if !tt.ok && !errors.Is(err, vault.ErrInvalidName) {
			t.Errorf("ValidateName(%q) = %v, want ErrInvalidName", tt.name, err)
		}
	}
}

// TestCreateGivenID: a caller may give the id (an import keeping a public
// client_id, say), but not one that is taken or is not an id of its kind.
func TestCreateGivenID(t *testing.T) {
	tv := newTestVault(t)
	const keyID, clientID = "key_0123456789abcdef", "cl_0123456789abcdefABCDEF"
	s1 := newSecret(t, "km")
	tv.update(t, func(tx *vault.Tx) error {
		if err := tx.CreateKey(&vault.Key{Credential: vault.Credential{ID: keyID, Name: "first"}}, s1); err != nil {
			return err
		}
		return tx.CreateClient(&vault.Client{Credential: vault.Credential{ID: clientID, Name: "c"}}, newSecret(t, "kmcs"))
	})
	tests := []struct {
		name string
		id   string
		want error
	}{
		{"taken", keyID, vault.ErrNameTaken},
		{"client id for a key", clientID, vault.ErrInvalidName},
		{"not an id", "first", vault.ErrInvalidName},
		{"too short", "key_abc", vault.ErrInvalidName},
	}
	for _, tt := range tests {
		err := tv.Update(func(tx *vault.Tx) error {
			return tx.CreateKey(&vault.Key{Credential: vault.Credential{ID: tt.id, Name: "second"}}, newSecret(t, "km"))
		})
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: CreateKey(id %q) = %v, want %v", tt.name, tt.id, err, tt.want)
		}
	}
	tv.view(t, func(tx *vault.Tx) error {
		for _, ref := range []string{"first", keyID} {
			if k, err := tx.Key(ref); err != nil || k.Name != "first" {
				t.Errorf("Key(%q) = %v, %v", ref, k, err)
			}
		}
		if k, err := tx.KeyBySecret(s1); err != nil || k.ID != keyID {
			t.Errorf("KeyBySecret = %v, %v", k, err)
		}
		return nil
	})
}
