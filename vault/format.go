package vault

import "encoding/binary"

// FormatVersion is the vault format this build writes and the newest it
// reads. Older formats are migrated on open (migrate.go).
const FormatVersion = 3

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

	// Format 3: the people who sign in, what they allowed, and the
	// short-lived secrets of the authorization-code flow.
	bucketUsers      = "users"       // user id -> sealed User
	bucketGroups     = "groups"      // permission group id -> sealed PermissionGroup
	bucketGrants     = "grants"      // grant id -> sealed Grant
	bucketGrantIndex = "grant_index" // user id 0 client id, and client id 0 user id -> sealed grant id
	bucketCodes      = "codes"       // HMAC(code) -> sealed AuthCode
	bucketRefresh    = "refresh"     // HMAC(refresh token) -> sealed RefreshToken
	bucketFamilies   = "families"    // refresh families, their tokens, and a grant's families (refresh.go)
	bucketExpiry     = "expiry"      // expiry queues: slot, expiry, kind, ref -> sealed {} (expiry.go)
)

// shardedBuckets are the buckets the tree covers.
var shardedBuckets = []string{
	bucketIndex, bucketKeys, bucketClients, bucketSettings, bucketSigning, bucketRevoked, bucketUsage, bucketChanges,
	bucketUsers, bucketGroups, bucketGrants, bucketGrantIndex, bucketCodes, bucketRefresh, bucketFamilies, bucketExpiry,
}

// usageBuckets hold usage data rather than records: writing them advances
// the revision but not the generation (see [Tx.Generation]), so that a
// server holding records in memory does not reload for them. Counters and
// last use; the change log itself; and the high-volume secrets of the
// authorization-code flow, which are read in the transaction that uses
// them and never cached: a thousand sign-ins a minute must not make every
// server reload a thousand times a minute.
var usageBuckets = map[string]bool{
	bucketUsage: true, bucketChanges: true,
	bucketCodes: true, bucketRefresh: true, bucketFamilies: true, bucketExpiry: true,
}

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
