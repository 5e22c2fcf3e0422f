// Package vault is keymint's storage: records sealed under a data key that
// age encrypts to the vault's recipients, kept in a [Store] (one bbolt file
// by default; in memory for tests), and authenticated as a whole.
//
// # Format 3
//
// The meta bucket holds, in the clear, the format version, a random vault
// id, the age ciphertext of the 256-bit data key and a check value that
// identifies the data key without revealing it; sealed, the random index
// key and the head. Every other value is sealed with XChaCha20-Poly1305
// under a key derived from the data key, with the vault id, the bucket name
// and the record's key as associated data. Names and secrets are found
// through an index keyed by HMAC-SHA256 under the index key, so neither
// appears in the file; secrets themselves are never stored, only their HMAC.
// The index key is stored, not derived, so that a new data key keeps every
// issued secret valid.
//
// The head (head.go) is sealed and rewritten by every commit: a revision
// that every commit advances, a generation that only record changes advance
// (usage and last use do not), the root of each bucket's hash tree
// (tree.go) and the end of the audit log's hash chain (audit.go). Every
// read that decides something checks its record's shard against the tree
// and the head, so a record replayed from an older copy, removed, added or
// altered is reported as [ErrTampered], naming its bucket, at a cost that
// does not grow with the vault. [Vault.Verify] checks everything. Each
// machine remembers the newest state it has seen of each vault
// ([Options.StateDir], rollback.go) and refuses an older one with a
// [RollbackError]. Each commit that changes records logs which
// (changes.go), so a server holding records in memory reloads only those.
//
// Format 3 adds what the authorization-code flow needs: users (users.go),
// permission groups (groups.go), the grants users give clients
// (grants.go), authorization codes (authcodes.go) and rotating refresh
// tokens in families (refresh.go); clients gain Public and
// PermissionGroup. Codes and refresh tokens are secrets, stored as their
// HMAC alone. They, their families and a grant's last access are usage
// data, like counters: a sign-in writes them but does not advance the
// generation, so servers do not reload for it. Expired codes, refresh
// tokens and revocations are removed a few per write through expiry
// queues (expiry.go), never by reading a whole bucket.
//
// Older formats are migrated on open, in one transaction (migrate.go).
//
// # Storage
//
// Everything here goes through the [Store] interface (store.go), whose
// documentation says what a backend must guarantee: serializable
// transactions that may conflict and are then retried by [Vault.Update].
// Quota exactness rests on that isolation alone.
//
// # Processes
//
// With the bbolt file a [Vault] does not keep the file open: every
// transaction opens it, takes bbolt's file lock, runs and closes it, so
// many processes share a vault. Unlocking (a passphrase costs about a second
// of scrypt) happens once in [Open], with no lock held. Only a fault reading
// the mapped file becomes a [DamagedError]; a panic in a caller's function
// stays a panic.
//
// Only this package touches bbolt and age; the rest of keymint sees typed
// records through [Tx], and identities and recipients through this
// package's functions.
package vault
