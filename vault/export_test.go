package vault

// StoreKey is where the store keeps a record: after its shard in sharded
// buckets, as is elsewhere. Tests that tamper with the file use it.
func (v *Vault) StoreKey(bucket string, key []byte) []byte {
	for _, b := range shardedBuckets {
		if b == bucket {
			return storeKey(v.keys.shardOf(bucket, shardKey(bucket, key)), key)
		}
	}
	return key
}

// PruneBatch and PruneVisits bound the pruning of one write (expiry.go).
const (
	PruneBatch  = pruneBatch
	PruneVisits = pruneVisits
)
