package main

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/keymint/keymint/vault"
)

func newVaultCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "vault",
		Short: "The vault as a whole: verify, recipients, rekey, backup and restore, accept a deliberate restore, copy to and from etcd",
	}
	cmd.AddCommand(newVaultVerifyCmd(a), newVaultRecipientsCmd(a), newVaultRekeyCmd(a),
		newVaultBackupCmd(a), newVaultRestoreCmd(a), newVaultAcceptRollbackCmd(a), newVaultCopyCmd(a))
	return cmd
}

type verifyJSON struct {
	Valid        bool           `json:"valid"`
	Revision     uint64         `json:"revision"`
	Generation   uint64         `json:"generation"`
	Records      map[string]int `json:"records"`
	AuditEntries int            `json:"audit_entries"`
}

func newVaultVerifyCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "verify",
		Short: "Check the whole vault: the file's pages, every record, the hash tree and the audit chain",
		Long: `Check the whole vault: that the file's pages are consistent, that every
record opens under the data key, that the set of records is exactly the one the
vault wrote (nothing replayed from an older copy, removed or added), that the
audit log's hash chain is whole to its last entry, and that the file is not
older than a state this machine has seen.

Exit status: 0 when everything checks, 1 when anything does not.`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			return a.runVaultVerify()
		},
	}
}

func (a *app) runVaultVerify() error {
	v, err := a.openVault()
	if err != nil {
		return err
	}
	loc, err := a.location()
	if err != nil {
		return err
	}
	if loc.Etcd == nil {
		if err := vault.CheckFile(v.Path(), a.cfg.LockTimeout); err != nil {
			return err
		}
	}
	r, err := v.Verify()
	if err != nil {
		return err
	}
	if a.json() {
		return a.writeJSON(verifyJSON{Valid: true, Revision: r.Revision, Generation: r.Generation, Records: r.Records, AuditEntries: r.AuditEntries})
	}
	t := newTable(a.io.Out, "CHECK", "RESULT")
	if loc.Etcd == nil {
		t.row("file pages", "ok")
	}
	buckets := make([]string, 0, len(r.Records))
	for b := range r.Records {
		buckets = append(buckets, b)
	}
	slices.Sort(buckets)
	for _, b := range buckets {
		t.row(b, plural(r.Records[b], "record")+", ok")
	}
	t.row("audit chain", fmt.Sprintf("%d entries, ok", r.AuditEntries))
	t.row("revision", strconv.FormatUint(r.Revision, 10)+" (generation "+strconv.FormatUint(r.Generation, 10)+"), not older than seen")
	if err := t.flush(); err != nil {
		return err
	}
	_, err = fmt.Fprintln(a.io.Out, "valid: the vault is whole")
	return err
}

func newVaultAcceptRollbackCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "accept-rollback",
		Short: "Trust the vault as it is now, after restoring an older copy on purpose",
		Long: `Trust the vault as it is now, even though this machine has seen a newer state
of it. keymint remembers the newest state of each vault it opens (under
$XDG_STATE_HOME/keymint) and refuses an older one, because an older copy put in
place brings back removed keys, lost revocations and spent quota. After a
deliberate restore from a backup, run this once on each machine that refuses it.
The vault is still checked as a whole first.`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			return a.runVaultAcceptRollback()
		},
	}
}

func (a *app) runVaultAcceptRollback() error {
	v, err := a.openVaultWith(func(o *vault.Options) { o.AcceptRollback = true })
	if err != nil {
		return err
	}
	r, err := v.Verify()
	if err != nil {
		return err
	}
	if a.json() {
		return a.writeJSON(map[string]any{"accepted": true, "revision": r.Revision, "generation": r.Generation})
	}
	_, err = fmt.Fprintf(a.io.Out, "accepted the vault at revision %d (generation %d) as its newest state on this machine\n", r.Revision, r.Generation)
	return err
}
