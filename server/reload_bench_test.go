package server_test

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keymint/keymint/apikey"
	"github.com/keymint/keymint/server"
	"github.com/keymint/keymint/token"
	"github.com/keymint/keymint/vault"
)

// benchSizes are the numbers of API keys, and as many clients, of the
// reload benchmarks: 10 and 10,000, and whatever KEYMINT_BENCH_SIZES adds
// (comma-separated, such as 100000; the vault is built 1,000 records per
// transaction, about a minute per 100,000).
func benchSizes(b *testing.B) []int {
	sizes := []int{10, 10_000}
	if extra := os.Getenv("KEYMINT_BENCH_SIZES"); extra != "" {
		for _, f := range strings.Split(extra, ",") {
			n, err := strconv.Atoi(f)
			if err != nil || n < 1 {
				b.Fatalf("KEYMINT_BENCH_SIZES: %q", f)
			}
			sizes = append(sizes, n)
		}
	}
	return sizes
}

// benchEnv is an env, quiet, whose vault holds n API keys and n clients
// more, all served; it returns the keys' ids and the CLI's handle.
func benchEnv(b *testing.B, n int) (*env, *vault.Vault, []string) {
	b.Helper()
	e := newEnv(b, func(o *server.Options) { o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil)) })
	cli := e.open(b)
	start := time.Now()
	ids := make([]string, 0, n)
	const batch = 1000
	for done := 0; done < n; done += batch {
		err := cli.Update(func(tx *vault.Tx) error {
			for i := done; i < min(done+batch, n); i++ {
				keySecret, err := apikey.Generate("km")
				if err != nil {
					return err
				}
				k := vault.Key{Credential: vault.Credential{Name: fmt.Sprintf("key-%07d", i), Scopes: []string{"read"}}}
				if err := tx.CreateKey(&k, keySecret); err != nil {
					return err
				}
				ids = append(ids[:i], k.ID)
				clientSecret, err := apikey.Generate("kmcs")
				if err != nil {
					return err
				}
				c := vault.Client{Credential: vault.Credential{Name: fmt.Sprintf("client-%07d", i), Scopes: []string{"read"}},
					GrantTypes: []string{token.GrantClientCredentials}, TokenTTL: time.Hour}
				if err := tx.CreateClient(&c, clientSecret); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	if err := server.FullLoad(e.srv); err != nil { // a check that it loads
		b.Fatal(err)
	}
	if err := e.srv.Reload(); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d keys and %d clients built and served in %v", n, n, time.Since(start).Round(time.Millisecond))
	return e, cli, ids
}

// BenchmarkReloadOneChange is the reload of a server after one API key
// changed (its scopes, through another handle, as the CLI would): the
// change log's read, one point read and the new snapshot. Only the reload
// is timed. Its cost should not grow with the vault.
func BenchmarkReloadOneChange(b *testing.B) {
	for _, n := range benchSizes(b) {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			e, cli, ids := benchEnv(b, n)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				id := ids[i%len(ids)]
				err := cli.Update(func(tx *vault.Tx) error {
					k, err := tx.Key(id)
					if err != nil {
						return err
					}
					k.Scopes = []string{"read", strconv.Itoa(i)}
					return tx.SaveKey(k)
				})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if err := e.srv.Reload(); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if p, f := server.ReloadCounts(e.srv); f != 0 || p < int64(b.N) {
				b.Fatalf("%d partial and %d full reloads", p, f)
			}
		})
	}
}

// BenchmarkFullLoad is, for comparison, what every reload cost before the
// change log: reading the whole vault into a new snapshot.
func BenchmarkFullLoad(b *testing.B) {
	for _, n := range benchSizes(b) {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			e, _, _ := benchEnv(b, n)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := server.FullLoad(e.srv); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
