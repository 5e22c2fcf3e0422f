package main

import (
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/keymint/keymint/vault"
)

type vaultCopyOptions struct {
	to, from string
}

func newVaultCopyCmd(a *app) *cobra.Command {
	var o vaultCopyOptions
	cmd := &cobra.Command{
		Use:   "copy --to LOCATION | --from LOCATION",
		Short: "Copy the vault between a file and etcd, whole and verified",
		Long: `Copy a vault, byte for byte, from one location to another: the configured
vault (--vault, KEYMINT_VAULT) to --to, or the vault at --from to the configured
location. A location is a file path or etcd://HOST:PORT,HOST:PORT/PREFIX
(etcds:// for TLS; the etcd-* settings give its CA, client certificate and
user, and KEYMINT_ETCD_PASSWORD its password).

The copy is what one read transaction of the source sees, opens with the same
identities, keeps every secret valid and counts on from the same state. It
never replaces a vault: the destination must not hold one. Into etcd it is
written in commits within the cluster's transaction limits, the part that
makes it a vault last, so no reader sees half a copy; a copy that fails
removes what it wrote. It is verified whole before the command succeeds.

Afterwards, point every keymint at the copy and leave the source alone: two
vaults written apart fork, and a machine that saw both refuses the older.`,
		Example: `  keymint vault copy --to etcd://10.0.0.1:2379,10.0.0.2:2379,10.0.0.3:2379/keymint
  KEYMINT_VAULT=etcd://10.0.0.1:2379/keymint keymint vault copy --to vault.db
  keymint --vault vault.db vault copy --from etcd://10.0.0.1:2379/keymint`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error { return a.runVaultCopy(o) },
	}
	cmd.Flags().StringVar(&o.to, "to", "", "where to copy the configured vault: a new file or an etcd URL")
	cmd.Flags().StringVar(&o.from, "from", "", "the vault to copy to the configured location: a file or an etcd URL")
	return cmd
}

type copyJSON struct {
	From    string `json:"from"`
	To      string `json:"to"`
	VaultID string `json:"vault_id"`
	vault.CopyReport
}

func (a *app) runVaultCopy(o vaultCopyOptions) error {
	if (o.to == "") == (o.from == "") {
		return usagef("give exactly one of --to LOCATION and --from LOCATION")
	}
	srcName, dstName := a.cfg.Vault, o.to
	if o.from != "" {
		srcName, dstName = o.from, a.cfg.Vault
	}
	src, err := a.locationOf(a.expandHome(srcName))
	if err != nil {
		return err
	}
	dst, err := a.locationOf(a.expandHome(dstName))
	if err != nil {
		return err
	}
	// Refuse a destination that holds a vault before asking for anything.
	if err := dst.Exists(); err == nil {
		return fmt.Errorf("%s: %w", dst, vault.ErrExists)
	} else if !errors.Is(err, vault.ErrNoVault) {
		return err
	}
	v, err := a.openVaultAt(src, func(*vault.Options) {})
	if err != nil {
		return err
	}
	lock, err := vault.PeekLock(src, vault.Options{LockTimeout: a.cfg.LockTimeout})
	if err != nil {
		return err
	}
	rep, err := v.CopyTo(dst)
	if err != nil {
		return err
	}
	if a.json() {
		return a.writeJSON(copyJSON{From: src.String(), To: dst.String(), VaultID: hex.EncodeToString(lock.ID), CopyReport: *rep})
	}
	records := 0
	for _, n := range rep.Verified.Records {
		records += n
	}
	_, err = fmt.Fprintf(a.io.Out, "copied vault %x from %s to %s: revision %d, %s and %s, in %s; the copy verifies whole\n",
		lock.ID, src, dst, rep.Verified.Revision, plural(records, "record"), fmt.Sprintf("%d audit log entries", rep.Verified.AuditEntries), plural(rep.Commits, "commit"))
	return err
}
