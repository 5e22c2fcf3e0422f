package vault

import "encoding/binary"

// FormatVersion is the vault format this build writes and the newest it reads.
const FormatVersion = 1

// Bucket names. meta is the only bucket whose values are not sealed.
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
)

var allBuckets = []string{bucketMeta, bucketIndex, bucketKeys, bucketClients, bucketSettings, bucketAudit, bucketSigning, bucketRevoked, bucketUsage}

// Keys inside the meta bucket.
var (
	metaFormat     = []byte("format")
	metaID         = []byte("vault_id")
	metaDataKey    = []byte("data_key")  // age ciphertext of the data key
	metaKeyCheck   = []byte("key_check") // HKDF of the data key: which key sealed the records
	metaGeneration = []byte("generation")
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
