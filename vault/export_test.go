package vault

import "sync/atomic"

// StoreKey is where the store keeps a record: after its shard in sharded
// buckets, as is elsewhere. Tests that tamper with the file use it.
func (v *Vault) StoreKey(bucket string, key []byte) []byte {
	for _, b := range shardedBuckets {
		if b == bucket {
			return storeKey(v.keys().shardOf(bucket, shardKey(bucket, key)), key)
		}
	}
	return key
}

// PruneBatch and PruneVisits bound the pruning of one write (expiry.go).
const (
	PruneBatch  = pruneBatch
	PruneVisits = pruneVisits
)

// CountCommits makes v count the write transactions of its store, and
// returns how many there were since.
func CountCommits(v *Vault) func() int64 {
	c := &countingStore{Store: v.store}
	v.store = c
	return c.updates.Load
}

type countingStore struct {
	Store
	updates atomic.Int64
}

func (c *countingStore) Update(fn func(WriteTx) error) error {
	c.updates.Add(1)
	return c.Store.Update(fn)
}
