package vault

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/keymint/keymint/apikey"
)

// benchVault is a vault file with n API keys and n clients, and one key's
// secret.
type benchVault struct {
	v      *Vault
	secret string
}

func buildBenchVault(b *testing.B, n int) *benchVault {
	b.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "vault.db")
	if err := Create(path, CreateOptions{Recipients: []age.Recipient{id.Recipient()}, Settings: Settings{KeyPrefix: "km", ClientSecretPrefix: "kmcs"}}); err != nil {
		b.Fatal(err)
	}
	v, err := Open(path, Options{Identities: []age.Identity{id}, LockTimeout: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	bv := &benchVault{v: v}
	const batch = 1000
	for start := 0; start < n; start += batch {
		err := v.Update(func(tx *Tx) error {
			for i := start; i < min(start+batch, n); i++ {
				ks, err := apikey.Generate("km")
				if err != nil {
					return err
				}
				cs, err := apikey.Generate("kmcs")
				if err != nil {
					return err
				}
				if err := tx.CreateKey(&Key{Credential: Credential{Name: fmt.Sprintf("key-%d", i)}}, ks); err != nil {
					return err
				}
				if err := tx.CreateClient(&Client{Credential: Credential{Name: fmt.Sprintf("client-%d", i)}, GrantTypes: []string{"client_credentials"}}, cs); err != nil {
					return err
				}
				if i == n/2 {
					bv.secret = ks
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return bv
}

// BenchmarkPointRead is key verify's read: a key found by its secret in one
// transaction, each record's shard re-hashed and checked up to the head. At
// 10 and at 100,000 credentials of each kind.
//
//	go test -run '^$' -bench 'PointRead|VerifyAll' -benchtime 2s ./vault/
func BenchmarkPointRead(b *testing.B) {
	for _, n := range []int{10, 100_000} {
		b.Run(fmt.Sprintf("credentials=%d", n), func(b *testing.B) {
			bv := buildBenchVault(b, n)
			b.ResetTimer()
			for b.Loop() {
				if err := bv.v.View(func(tx *Tx) error {
					_, err := tx.KeyBySecret(bv.secret)
					return err
				}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerifyAll is `keymint vault verify`: every record of the vault.
func BenchmarkVerifyAll(b *testing.B) {
	for _, n := range []int{10, 100_000} {
		b.Run(fmt.Sprintf("credentials=%d", n), func(b *testing.B) {
			bv := buildBenchVault(b, n)
			b.ResetTimer()
			for b.Loop() {
				if _, err := bv.v.Verify(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
