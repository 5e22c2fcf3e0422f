package vault

import "encoding/binary"

// FormatVersion is the vault format this build writes and the newest it
// reads. Older formats are migrated on open (migrate.go).
const FormatVersion = 2

// Bucket names. meta is the only bucket whose values are not all sealed;
// audit is authenticated by its hash chain and the head, tree by the head;
// every other bucket is sharded and covered by the tree (tree.go).
const (
	bucketMeta     = "meta"
	bucketIndex    = "index"    // HMAC(purpose, name or secret) -> sealed id
	bucketKeys     = "keys"     // key id -> sealed Key
	bucketClients  = "clients"  // client id -> sealed Client
	bucketSettings = "settings" // setting name -> sealed value
	bucketAudit    = "audit"    // sequence -> sealed AuditEntry
	bucketSigning  = "signing"  // kid -> sealed SigningKey
	bucketRevoked  = "revoked"  // jti -> sealed Revocation
	bucketUsage    = "usage"    // credential id + period key -> sealed counter
	bucketChanges  = "changes"  // generation -> sealed list of changed records
)

// shardedBuckets are the buckets the tree covers.
var shardedBuckets = []string{bucketIndex, bucketKeys, bucketClients, bucketSettings, bucketSigning, bucketRevoked, bucketUsage, bucketChanges}

// Keys inside the meta bucket. format, vault_id, data_key and key_check are
// in the clear, since they are needed to unlock; index_key and head are
// sealed.
var (
	metaFormat   = []byte("format")
	metaID       = []byte("vault_id")
	metaDataKey  = []byte("data_key")  // age ciphertext of the data key
	metaKeyCheck = []byte("key_check") // HKDF of the data key: which key sealed the records
	metaIndexKey = []byte("index_key") // sealed: the random key of the HMAC index
	metaHead     = []byte("head")      // sealed: see head
)

func u64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

func u64bytes(v uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, v)
}
