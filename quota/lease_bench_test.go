package quota_test

import (
	"testing"
	"time"

	"github.com/keymint/keymint/quota"
	"github.com/keymint/keymint/vault"
)

// BenchmarkConsume is a use counted the way the CLI counts it: one write
// transaction (open, lock, commit with fsync, close) per use.
func BenchmarkConsume(b *testing.B) {
	tv := newTestVault(b)
	c := tv.newKey(b, "k", "1000000000/month")
	for b.Loop() {
		err := tv.Update(func(tx *vault.Tx) error {
			_, err := quota.Consume(tx, c, tv.clock.Now())
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLeaserTake is a use counted the way a server counts it, from
// goroutines in parallel, for one credential: mostly from memory, with a
// transaction per block. The maxblock=16 case shows what the default's
// larger blocks buy.
func BenchmarkLeaserTake(b *testing.B) {
	for _, tc := range []struct {
		name     string
		limits   []string
		maxBlock int64
	}{
		{"limited", []string{"1000000000/month"}, 0},
		{"limited/maxblock=16", []string{"1000000000/month"}, 16},
		{"unlimited", nil, 0},
	} {
		b.Run(tc.name, func(b *testing.B) {
			tv := newTestVault(b)
			c := tv.newKey(b, "k", tc.limits...)
			l := quota.NewLeaser(tv.Vault, time.Now)
			l.MaxBlock = tc.maxBlock
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if d, err := l.Take(c); err != nil || !d.Allowed {
						b.Errorf("Take = %+v, %v", d, err)
						return
					}
				}
			})
			b.StopTimer()
			if err := l.Close(); err != nil {
				b.Fatal(err)
			}
		})
	}
}
