package vault

import "errors"

// Sentinel errors. Callers test them with errors.Is; messages are lowercase
// and say what to do.
var (
	ErrNoVault       = errors.New("no vault at this path; create one with `keymint init` or set --vault")
	ErrExists        = errors.New("a vault (or another file) is already there, and keymint never replaces one: choose another location")
	ErrNotVault      = errors.New("file is not a keymint vault (or is truncated); check --vault, or restore from a backup")
	ErrNewerFormat   = errors.New("vault was written by a newer keymint; upgrade keymint to open it")
	ErrWrongIdentity = errors.New("none of the given identities can unlock this vault; check --identity, KEYMINT_IDENTITY or the passphrase")
	ErrNoIdentity    = errors.New("no identity to unlock the vault")
	ErrCorrupt       = errors.New("vault record failed authentication: the file was altered or damaged; restore from a backup")
	// ErrTampered is wrapped by [TamperError]: the state as a whole fails
	// authentication.
	ErrTampered = errors.New("vault failed authentication: it was altered (records replayed, removed or added) or damaged; run `keymint vault verify`, and restore from a backup")
	// ErrRolledBack is wrapped by [RollbackError].
	ErrRolledBack   = errors.New("vault was rolled back")
	ErrBusy         = errors.New("vault is locked by another process; retry or raise --lock-timeout")
	ErrRekeyed      = errors.New("vault's data key changed while this command ran; run the command again")
	ErrNotFound     = errors.New("not found")
	ErrNameTaken    = errors.New("name is already taken")
	ErrInvalidName  = errors.New("invalid name")
	ErrIdentityPerm = errors.New("identity file is readable by others")
)

// ErrDisabled means a credential was disabled by its operator, so it
// cannot be used until it is enabled again. It is wrapped by
// [DisabledError].
var ErrDisabled = errors.New("credential is disabled")

// ErrUsageOverflow means a counter would pass the largest int64. No real
// use count gets there; a huge top-up can.
var ErrUsageOverflow = errors.New("usage count would overflow")

// ErrAuditChain reports a broken audit hash chain.
var ErrAuditChain = errors.New("audit log hash chain is broken")
