package vault

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"filippo.io/age"
	bolt "go.etcd.io/bbolt"
)

// Backups.
//
// A backup is the vault's bbolt file as one read transaction sees it,
// written by bbolt itself (Tx.WriteTo) through age to the vault's
// recipients, or to its passphrase. Nothing is re-wrapped: the records
// stay sealed under the data key, and the data key stays encrypted to the
// recipients it was encrypted to, so `age -d` gives a vault file that the
// identities of the vault open as they open the vault. Restore is the
// reverse, with every check before anything is written: decrypt into a
// temporary file beside the target, open it as a vault, verify the whole
// state, compare it with the vault it replaces and with the newest state
// this machine has seen, then rename it into place and remember its state
// as accepted (as `keymint vault accept-rollback` does).

// Errors of backups and restores. (Kept here, beside what returns them.)
var (
	// ErrBadBackup reports a backup that is not a whole age file of a
	// keymint vault: truncated, altered, or something else.
	ErrBadBackup = errors.New("backup is damaged, truncated or not a keymint backup; nothing was written")
	// ErrBackupStore reports a vault whose store is not a file: back it
	// up with `keymint vault copy` to a file first.
	ErrBackupStore = errors.New("only a vault file can be backed up; copy the vault to a file with `keymint vault copy` first")
	// ErrRestoreExists reports a restore onto an existing vault without
	// RestoreOptions.Force.
	ErrRestoreExists = errors.New("a vault already exists there; restoring replaces it: run again with --force")
	// ErrRestoreOlder reports a backup older than the state this machine
	// has seen of its vault, restored without RestoreOptions.Force.
	ErrRestoreOlder = errors.New("the backup is older than the vault's newest state this machine has seen; restoring it brings back what changed since: run again with --force")
)

// BackupInfo says what a backup holds.
type BackupInfo struct {
	// State is the vault's state in the backup.
	State State
	// Bytes is the size of the vault file in the backup (before age).
	Bytes int64
}

// Backup writes the vault, as one read transaction sees it, to w through
// age, encrypted to recipients: the vault's own, or its passphrase's scrypt
// recipient (see [Vault.Recipients]). The state is checked as any
// transaction's is (its head, and not older than one seen) before a byte of
// the file is written. Every write that committed before Backup was called
// is in the backup. Writers wait while the file is copied (bbolt's file
// lock is shared by readers and exclusive to a writer), for as long as
// writing the file's size to w takes; the recipients are wrapped (a
// passphrase's scrypt, a plugin's prompt) before the lock is taken. If
// Backup fails, what it wrote to w is not a backup.
func (v *Vault) Backup(w io.Writer, recipients []Recipient) (BackupInfo, error) {
	bs, ok := v.store.(*boltStore)
	if !ok {
		return BackupInfo{}, ErrBackupStore
	}
	if len(recipients) == 0 {
		return BackupInfo{}, errors.New("back up the vault: no recipients to encrypt the backup to")
	}
	if err := checkRecipientMix(recipients); err != nil {
		return BackupInfo{}, err
	}
	aw, err := age.Encrypt(w, recipients...)
	if err != nil {
		return BackupInfo{}, fmt.Errorf("encrypt backup: %w", err)
	}
	var info BackupInfo
	floor := v.guard.newest()
	bs.mu.RLock()
	err = withDB(bs.path, true, bs.timeout, func(db *bolt.DB) error {
		return db.View(func(btx *bolt.Tx) error {
			tx, err := v.begin(&boltTx{btx: btx}, nil, floor)
			if err != nil {
				return err
			}
			info.State = tx.state
			var werr error
			if ferr := readingFile(func() { info.Bytes, werr = btx.WriteTo(aw) }); ferr != nil {
				return ferr
			}
			if werr != nil {
				return fmt.Errorf("write backup: %w", werr)
			}
			return nil
		})
	})
	bs.mu.RUnlock()
	if err != nil {
		return BackupInfo{}, err
	}
	if err := aw.Close(); err != nil {
		return BackupInfo{}, fmt.Errorf("write backup: %w", err)
	}
	return info, v.guard.saw(info.State, false)
}

// BackupFile writes a backup (see [Vault.Backup]) to path: to a new 0600
// file beside it, synced, then renamed over path, so path holds either
// its old contents or the whole backup, never part of one. It refuses to
// write over the vault itself.
func (v *Vault) BackupFile(path string, recipients []Recipient) (info BackupInfo, err error) {
	if same, _ := sameFile(path, v.path); same {
		return BackupInfo{}, fmt.Errorf("%s is the vault itself; write the backup elsewhere", path)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".keymint-backup-*")
	if err != nil {
		return BackupInfo{}, fmt.Errorf("create backup: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	bw := bufio.NewWriterSize(tmp, 1<<20)
	if info, err = v.Backup(bw, recipients); err != nil {
		return BackupInfo{}, err
	}
	if err = bw.Flush(); err != nil {
		return BackupInfo{}, fmt.Errorf("write backup: %w", err)
	}
	if err = tmp.Sync(); err != nil {
		return BackupInfo{}, fmt.Errorf("write backup: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return BackupInfo{}, fmt.Errorf("write backup: %w", err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return BackupInfo{}, fmt.Errorf("move backup into place: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return info, err
	}
	return info, nil
}

// sameFile reports whether a and b name one existing file.
func sameFile(a, b string) (bool, error) {
	sa, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	sb, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	return os.SameFile(sa, sb), nil
}

// RestoreOptions configure [Restore].
type RestoreOptions struct {
	// Identities decrypt the backup and unlock the vault in it: the
	// identities (or passphrase) that open the vault.
	Identities []Identity
	// StateDir is where this machine remembers the newest state of each
	// vault (see [Options]). The restored state is remembered there as
	// accepted.
	StateDir    string
	LockTimeout time.Duration
	Now         func() time.Time
	// Force replaces a vault that exists at the target, and restores a
	// state older than the newest this machine has seen.
	Force bool
	// Confirm, if not nil, is called when Force was needed, after the
	// backup was checked and compared and before anything is written; an
	// error stops the restore with nothing written.
	Confirm func(*RestorePlan) error
}

// RestorePlan is what a restore checked and what it changes.
type RestorePlan struct {
	// Target is where the vault is restored.
	Target string `json:"target"`
	// VaultID is the id of the vault in the backup, in hex.
	VaultID string `json:"vault_id"`
	// Backup is the backup's state, verified as a whole ([Vault.Verify]).
	Backup Report `json:"backup"`
	// Replaces is true when a file exists at Target.
	Replaces bool `json:"replaces"`
	// Current is the state of the vault at Target, when it could be read;
	// CurrentUnread says why it could not, when there is a file there.
	Current       *State `json:"current,omitempty"`
	CurrentUnread string `json:"current_unread,omitempty"`
	// OtherVault is true when Target holds another vault (another id).
	OtherVault bool `json:"other_vault,omitempty"`
	// Seen is the newest state of the backup's vault this machine has
	// seen, if any.
	Seen *State `json:"seen,omitempty"`
	// Older is true when the backup is older than Seen or than Current
	// (or forked from it): restoring it rolls the vault back.
	Older bool `json:"older"`
	// Compared with the vault at Target (same vault only): records the
	// backup has and the vault no longer has (they come back), records
	// the vault has and the backup has not (they go), revocations in
	// force now that the backup lacks (the tokens become valid again),
	// and usage counts the backup has lower (spent quota comes back).
	Back            []RecordRef   `json:"back,omitempty"`
	Gone            []RecordRef   `json:"gone,omitempty"`
	RevocationsLost []Revocation  `json:"revocations_lost,omitempty"`
	UsageLower      []UsageChange `json:"usage_lower,omitempty"`
}

// RecordRef names a record in a [RestorePlan].
type RecordRef struct {
	// Kind is key, client, user, permission group or signing key.
	Kind string `json:"kind"`
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// UsageChange is a usage count that a restore lowers.
type UsageChange struct {
	ID     string `json:"id"`
	Name   string `json:"name,omitempty"`
	Period string `json:"period"`
	Now    int64  `json:"now"`
	Backup int64  `json:"backup"`
}

// Restore reads a backup made by [Vault.Backup] from r and puts the vault
// in it at target. Nothing is written at target, nor remembered, unless
// every check passed: the backup decrypts with opts.Identities
// ([ErrWrongIdentity] if not) and is whole ([ErrBadBackup]), is a vault
// those identities unlock, and verifies as a whole ([Vault.Verify]). A
// vault at target is replaced only with opts.Force ([ErrRestoreExists]),
// and so is a backup older than the state this machine has seen
// ([ErrRestoreOlder]); the plan says what that brings back. The backup is
// decrypted into a temporary file beside target and renamed into place,
// and its state is then remembered as accepted, so later commands open it.
// The plan is returned with a refusal too.
func Restore(r io.Reader, target string, opts RestoreOptions) (*RestorePlan, error) {
	if len(opts.Identities) == 0 {
		return nil, ErrNoIdentity
	}
	lockTimeout := (&Options{LockTimeout: opts.LockTimeout}).lockTimeout()
	ar, err := age.Decrypt(r, opts.Identities...)
	if err != nil {
		var noMatch *age.NoIdentityMatchError
		if errors.As(err, &noMatch) {
			return nil, fmt.Errorf("backup: %w", ErrWrongIdentity)
		}
		return nil, fmt.Errorf("%w (%v)", ErrBadBackup, err)
	}
	dir := filepath.Dir(target)
	made, err := mkdirs(dir)
	if err != nil {
		return nil, fmt.Errorf("create vault directory: %w", err)
	}
	placed := false
	defer func() {
		if !placed {
			// Remove the directories made for a vault that did not come.
			for _, d := range slices.Backward(made) {
				os.Remove(d)
			}
		}
	}()
	tmp, err := os.CreateTemp(dir, ".keymint-restore-*")
	if err != nil {
		return nil, fmt.Errorf("create temporary vault: %w", err)
	}
	tmpPath := tmp.Name()
	defer func() {
		if !placed {
			os.Remove(tmpPath)
		}
	}()
	tw := &fileWriter{f: tmp}
	_, err = io.Copy(tw, ar)
	if err == nil {
		err = tmp.Sync()
		tw.err = err
	}
	if cerr := tmp.Close(); err == nil && cerr != nil {
		err, tw.err = cerr, cerr
	}
	if err != nil {
		if tw.err != nil {
			return nil, fmt.Errorf("write temporary vault: %w", err)
		}
		return nil, fmt.Errorf("%w (%v)", ErrBadBackup, err)
	}
	if err := CheckFile(tmpPath, lockTimeout); err != nil {
		return nil, fmt.Errorf("%w (%v)", ErrBadBackup, err)
	}
	// The restored vault, opened from the temporary file with its state
	// remembered in memory only.
	bv, err := OpenStore(openBoltStore(tmpPath, lockTimeout), target, Options{Identities: opts.Identities, Now: opts.Now, LockTimeout: lockTimeout})
	if err != nil {
		return nil, fmt.Errorf("the vault in the backup: %w", err)
	}
	report, err := bv.Verify()
	if err != nil {
		return nil, fmt.Errorf("the vault in the backup fails verification: %w", err)
	}
	plan := &RestorePlan{Target: target, VaultID: hex.EncodeToString(bv.id), Backup: *report}
	backupState := bv.guard.newest()
	guard, err := newRollbackGuard(target, opts.StateDir, bv.id)
	if err != nil {
		return nil, err
	}
	if seen := guard.newest(); seen.Revision != 0 {
		plan.Seen = &seen
		plan.Older = guard.check(backupState, seen) != nil
	}
	if _, err := os.Lstat(target); err == nil {
		plan.Replaces = true
		if err := compareCurrent(plan, bv, backupState, opts, lockTimeout); err != nil {
			plan.CurrentUnread = err.Error()
		}
	}
	switch {
	case plan.Older && !opts.Force:
		return plan, fmt.Errorf("%s: %w", target, ErrRestoreOlder)
	case plan.Replaces && !opts.Force:
		return plan, fmt.Errorf("%s: %w", target, ErrRestoreExists)
	}
	if (plan.Replaces || plan.Older) && opts.Confirm != nil {
		if err := opts.Confirm(plan); err != nil {
			return plan, err
		}
	}
	if plan.Replaces {
		err = os.Rename(tmpPath, target)
	} else {
		// Link, unlike rename, fails if a vault appeared meanwhile.
		if err = os.Link(tmpPath, target); err == nil {
			os.Remove(tmpPath)
		} else if errors.Is(err, os.ErrExist) {
			return plan, fmt.Errorf("%s: %w", target, ErrRestoreExists)
		}
	}
	if err != nil {
		return plan, fmt.Errorf("move restored vault into place: %w", err)
	}
	placed = true
	if err := syncDir(dir); err != nil {
		return plan, err
	}
	// As accept-rollback: this state is now the newest of the vault.
	if err := guard.saw(backupState, true); err != nil {
		return plan, err
	}
	return plan, nil
}

// mkdirs makes dir and its missing parents, 0700, and returns those it
// made, outermost first.
func mkdirs(dir string) ([]string, error) {
	var missing []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil || filepath.Dir(d) == d {
			break
		}
		missing = append(missing, d)
	}
	slices.Reverse(missing)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return missing, nil
}

// fileWriter writes to f and keeps its error, so that a failure to write
// (a full disk) is told from a failure to read the backup.
type fileWriter struct {
	f   *os.File
	err error
}

func (w *fileWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	if err != nil {
		w.err = err
	}
	return n, err
}

// compareCurrent fills what plan says about the vault at its target,
// reading it without writing: a vault of an older format, which opening
// would migrate, is not compared.
func compareCurrent(plan *RestorePlan, bv *Vault, backupState State, opts RestoreOptions, lockTimeout time.Duration) error {
	store := openBoltStore(plan.Target, lockTimeout)
	var h *header
	if err := store.View(func(st ReadTx) error {
		var err error
		h, err = readHeader(st)
		return err
	}); err != nil {
		return err
	}
	if !bytes.Equal(h.id, bv.id) {
		plan.OtherVault = true
		return nil
	}
	if h.format != FormatVersion {
		return fmt.Errorf("it is a format %d vault, which opening would migrate", h.format)
	}
	cur, err := OpenStore(store, plan.Target, Options{Identities: opts.Identities, Now: opts.Now, LockTimeout: lockTimeout})
	if err != nil {
		return err
	}
	curState := cur.guard.newest()
	plan.Current = &curState
	if cur.guard.check(backupState, curState) != nil {
		plan.Older = true
	}
	var now, then snapshotSummary
	if err := cur.View(func(tx *Tx) error { return now.read(tx) }); err != nil {
		return err
	}
	if err := bv.View(func(tx *Tx) error { return then.read(tx) }); err != nil {
		return err
	}
	for _, id := range sortedKeys(then.records) {
		if _, ok := now.records[id]; !ok {
			plan.Back = append(plan.Back, then.records[id])
		}
	}
	for _, id := range sortedKeys(now.records) {
		if _, ok := then.records[id]; !ok {
			plan.Gone = append(plan.Gone, now.records[id])
		}
	}
	for _, jti := range sortedKeys(now.revoked) {
		if _, ok := then.revoked[jti]; !ok {
			plan.RevocationsLost = append(plan.RevocationsLost, now.revoked[jti])
		}
	}
	for _, k := range sortedKeys(now.usage) {
		if n, b := now.usage[k], then.usage[k]; b < n {
			id, period := splitUsageKey(k)
			name := then.records[id].Name
			if name == "" {
				name = now.records[id].Name
			}
			plan.UsageLower = append(plan.UsageLower, UsageChange{ID: id, Name: name, Period: period, Now: n, Backup: b})
		}
	}
	return nil
}

// snapshotSummary is what a restore compares of two states.
type snapshotSummary struct {
	records map[string]RecordRef  // by bucket and record key
	revoked map[string]Revocation // in force, by jti
	usage   map[string]int64      // uses counted, by usage key
}

// restoreKinds are the buckets of named records a restore compares.
var restoreKinds = []struct{ bucket, kind string }{
	{bucketKeys, "key"}, {bucketClients, "client"}, {bucketUsers, "user"},
	{bucketGroups, "permission group"}, {bucketSigning, "signing key"},
}

func (s *snapshotSummary) read(tx *Tx) error {
	s.records, s.revoked, s.usage = map[string]RecordRef{}, map[string]Revocation{}, map[string]int64{}
	type named struct {
		ID   string `json:"id"`
		Name string `json:"name"`
		KID  string `json:"kid"`
	}
	for _, k := range restoreKinds {
		if err := forEachJSON(tx, k.bucket, func(key []byte, r *named) error {
			s.records[string(key)] = RecordRef{Kind: k.kind, ID: string(key), Name: cmp.Or(r.Name, r.KID)}
			return nil
		}); err != nil {
			return err
		}
	}
	revs, err := tx.Revocations()
	if err != nil {
		return err
	}
	for _, r := range revs {
		s.revoked[r.JTI] = r
	}
	return forEachJSON(tx, bucketUsage, func(key []byte, raw *json.RawMessage) error {
		if len(*raw) == 0 || (*raw)[0] != '{' {
			return nil // a last use
		}
		var c UsageCount
		if err := json.Unmarshal(*raw, &c); err != nil {
			return fmt.Errorf("read usage: %w", err)
		}
		s.usage[string(key)] = c.Used
		return nil
	})
}

// splitUsageKey returns the credential id and period key of a usage key
// (usage.go).
func splitUsageKey(k string) (id, period string) {
	i := strings.IndexByte(k, 0)
	if i < 0 || i+2 > len(k) {
		return k, ""
	}
	return k[:i], k[i+2:]
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
