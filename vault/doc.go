// Package vault is keymint's storage: one bbolt file whose records are sealed
// under a data key that age encrypts to the vault's recipients.
//
// # Format
//
// The meta bucket holds, in the clear, the format version, a random vault id,
// the age ciphertext of the 256-bit data key, a check value that identifies
// the data key without revealing it, and a generation counter that every
// change but a usage count increments. Every other value is sealed with XChaCha20-Poly1305
// under a key derived from the data key, with the vault id, the bucket name
// and the record's key as associated data, so a record cannot be altered,
// moved or swapped without detection. Names and secrets are found through an
// index keyed by HMAC-SHA256, so neither appears in the file; secrets
// themselves are never stored, only their HMAC.
//
// # Processes
//
// A [Vault] does not keep the file open. [Vault.Update] and [Vault.View] open
// it, run one transaction and close it, so bbolt's file lock is held for one
// transaction only and many processes can share a vault. Unlocking (which
// for a passphrase costs about a second of scrypt) happens once in [Open],
// without the lock held.
//
// Only this package touches bbolt and age; the rest of keymint sees typed
// records through [Tx].
package vault
