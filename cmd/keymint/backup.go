package main

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keymint/keymint/vault"
)

// vaultBackupOptions are the options of `keymint vault backup`.
type vaultBackupOptions struct {
	file string
}

func newVaultBackupCmd(a *app) *cobra.Command {
	var o vaultBackupOptions
	return &cobra.Command{
		Use:   "backup FILE",
		Short: "Write an age-encrypted backup of the vault, taken in one read transaction",
		Long: `Write a backup of the vault to FILE: the vault file itself, as one read
transaction sees it, encrypted with age to the vault's recipients (or, for a
vault locked with a passphrase, to the same passphrase). Every change
acknowledged before the backup began is in it, while serve and other commands
go on writing; they wait while the file is copied.

The stock age tool restores it alone:

  age -d -i identity.txt backup.age > vault.db
  keymint --vault vault.db key ls

and ` + "`keymint vault restore`" + ` checks it before it writes anything. FILE is
written 0600, to a temporary file renamed into place, so it is either the whole
backup or what it was before.

EXIT CODES
  0  the backup is written;  1  the vault could not be read or FILE could not
  be written;  2  bad usage.`,
		Args: exactArgs(1, "the FILE to write the backup to"),
		RunE: func(_ *cobra.Command, args []string) error {
			o.file = args[0]
			return a.runVaultBackup(o)
		},
	}
}

type backupJSON struct {
	File       string `json:"file"`
	Revision   uint64 `json:"revision"`
	Generation uint64 `json:"generation"`
	Bytes      int64  `json:"bytes"`
	Passphrase bool   `json:"passphrase"`
	Recipients int    `json:"recipients"`
}

func (a *app) runVaultBackup(o vaultBackupOptions) error {
	u, err := a.openVaultKeepingIdentities()
	if err != nil {
		return err
	}
	v, pass := u.v, u.pass
	list, err := v.Recipients()
	if err != nil {
		return err
	}
	var recipients []vault.Recipient
	switch {
	case list.Passphrase && pass == "":
		return errors.New("this vault is locked with a passphrase, and its backup is encrypted to the same passphrase: give it with KEYMINT_PASSPHRASE or --passphrase-file, or type it at a terminal")
	case list.Passphrase:
		r, _, err := vault.Passphrase(pass)
		if err != nil {
			return err
		}
		recipients = []vault.Recipient{r}
	case len(list.Recipients) == 0:
		return fmt.Errorf("back up the vault: %w", vault.ErrRecipientsUnknown)
	default:
		for _, s := range list.Recipients {
			r, err := vault.ParseRecipient(s, a.pluginUI())
			if err != nil {
				return fmt.Errorf("the vault's recipient %q: %w", s, err)
			}
			recipients = append(recipients, r)
		}
	}
	info, err := v.BackupFile(o.file, recipients)
	if err != nil {
		return err
	}
	if a.json() {
		return a.writeJSON(backupJSON{File: o.file, Revision: info.State.Revision, Generation: info.State.Generation,
			Bytes: info.Bytes, Passphrase: list.Passphrase, Recipients: len(list.Recipients)})
	}
	to := plural(len(recipients), "recipient")
	if list.Passphrase {
		to = "the vault's passphrase"
	}
	_, err = fmt.Fprintf(a.io.Out, "backed up the vault at revision %d (generation %d) to %s, encrypted to %s\n",
		info.State.Revision, info.State.Generation, o.file, to)
	return err
}

// vaultRestoreOptions are the options of `keymint vault restore`.
type vaultRestoreOptions struct {
	file  string
	force bool
	yes   bool
}

func newVaultRestoreCmd(a *app) *cobra.Command {
	var o vaultRestoreOptions
	cmd := &cobra.Command{
		Use:   "restore FILE",
		Short: "Restore the vault from a backup, checking all of it before writing anything",
		Long: `Restore the vault (--vault) from a backup made by ` + "`keymint vault backup`" + `.

Nothing is written until the whole backup has checked: it is decrypted with
the identity (or passphrase) that opens the vault into a temporary file beside
the vault, opened as a vault, and verified as ` + "`keymint vault verify`" + ` does.
It is then renamed into place in one step, and this machine takes its state as
the vault's newest, as ` + "`keymint vault accept-rollback`" + ` does.

A vault that exists at --vault is replaced only with --force. A backup older
than the newest state this machine has seen of the vault is restored only
with --force too, since it rolls the vault back: keymint first says what
comes back, comparing the backup with the vault it replaces (keys, clients,
users and signing keys removed since, revocations lost, usage counts that go
back) and what goes away. --force asks for confirmation on a terminal; --yes
gives it, and without a terminal --force needs --yes.

After a restore, restart any ` + "`keymint serve`" + ` of the vault, and run
` + "`keymint vault accept-rollback`" + ` on other machines that saw a newer state.

EXIT CODES
  0  restored;  1  the backup is damaged, does not open with the identity,
  fails verification, or needs --force (or --yes), and nothing was written;
  2  bad usage.`,
		Args: exactArgs(1, "the backup FILE to restore"),
		RunE: func(_ *cobra.Command, args []string) error {
			o.file = args[0]
			return a.runVaultRestore(o)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.force, "force", false, "replace an existing vault, or restore a state older than this machine has seen")
	f.BoolVar(&o.yes, "yes", false, "do not ask for confirmation of --force")
	return cmd
}

func (a *app) runVaultRestore(o vaultRestoreOptions) error {
	if o.yes && !o.force {
		return usagef("--yes confirms --force; give both to replace a vault")
	}
	if vault.IsEtcdURL(a.cfg.Vault) {
		return usagef("a backup is restored to a vault file: give --vault FILE, then copy it into etcd with keymint vault copy --to %s", a.cfg.Vault)
	}
	f, err := os.Open(o.file)
	if err != nil {
		return fmt.Errorf("open backup: %w", err)
	}
	defer f.Close()
	ids, source, err := a.identities()
	if err != nil {
		return err
	}
	shown := false
	plan, err := vault.Restore(f, a.cfg.Vault, vault.RestoreOptions{
		Identities:  ids,
		StateDir:    a.stateDir(),
		LockTimeout: a.cfg.LockTimeout,
		Now:         a.now,
		Force:       o.force,
		Confirm: func(p *vault.RestorePlan) error {
			if o.yes || !a.io.canPrompt() {
				return a.confirmRestore(p, o.yes)
			}
			// The person deciding sees first what the restore changes:
			// on stdout, or on stderr when stdout is for -o json.
			w := a.io.Out
			if a.json() {
				w = a.io.Err
			}
			if err := writeRestorePlan(w, p); err != nil {
				return err
			}
			shown = !a.json()
			return a.confirmRestore(p, false)
		},
	})
	switch {
	case errors.Is(err, vault.ErrWrongIdentity):
		return fmt.Errorf("%s: %w", source, err)
	case plan == nil:
		return err
	case err != nil && !errors.Is(err, vault.ErrRestoreExists) && !errors.Is(err, vault.ErrRestoreOlder) && !errors.Is(err, errRestoreUnconfirmed):
		return err
	}
	// Restored, or refused for want of --force or a confirmation: say what
	// the restore changes (or would change).
	if a.json() {
		if jerr := a.writeJSON(restoreJSON{Restored: err == nil, RestorePlan: plan}); err == nil {
			err = jerr
		}
		return err
	}
	if !shown {
		if werr := writeRestorePlan(a.io.Out, plan); err == nil {
			err = werr
		}
	}
	if err == nil {
		_, err = fmt.Fprintln(a.io.Out, restoredLine(plan))
	}
	return err
}

// errRestoreUnconfirmed is wrapped by a restore the person did not
// confirm, or could not for want of a terminal.
var errRestoreUnconfirmed = errors.New("nothing was written")

// confirmRestore asks the person at the terminal to confirm a restore that
// replaces a vault or rolls it back; without a terminal it refuses, saying
// --yes confirms.
func (a *app) confirmRestore(p *vault.RestorePlan, yes bool) error {
	if yes {
		return nil
	}
	what := "replace the vault at " + p.Target
	if !p.Replaces {
		what = "restore an older state of the vault to " + p.Target
	}
	if !a.io.canPrompt() {
		return fmt.Errorf("restore --force would %s, and there is no terminal to confirm on: add --yes to confirm; %w", what, errRestoreUnconfirmed)
	}
	err := a.confirm(false, strings.ToUpper(what[:1])+what[1:]+"?")
	if errors.Is(err, errNotConfirmed) {
		return fmt.Errorf("restore not confirmed; %w", errRestoreUnconfirmed)
	}
	return err
}

type restoreJSON struct {
	Restored bool `json:"restored"`
	*vault.RestorePlan
}

// writeRestorePlan says what the backup holds and what restoring it
// changes.
func writeRestorePlan(w io.Writer, p *vault.RestorePlan) error {
	var b strings.Builder
	fmt.Fprintf(&b, "backup: vault %s at revision %d (generation %d), verified: %s, %s, %d audit entries\n",
		p.VaultID, p.Backup.Revision, p.Backup.Generation,
		plural(p.Backup.Records["keys"], "key"), plural(p.Backup.Records["clients"], "client"), p.Backup.AuditEntries)
	switch {
	case p.Replaces && p.OtherVault:
		fmt.Fprintf(&b, "replaces: %s, which holds another vault\n", p.Target)
	case p.Replaces && p.Current != nil:
		fmt.Fprintf(&b, "replaces: %s at revision %d (generation %d)\n", p.Target, p.Current.Revision, p.Current.Generation)
	case p.Replaces:
		fmt.Fprintf(&b, "replaces: %s, which could not be read to compare (%s)\n", p.Target, p.CurrentUnread)
	}
	if p.Older {
		newest := p.Current
		if p.Seen != nil && (newest == nil || p.Seen.Revision > newest.Revision) {
			newest = p.Seen
		}
		fmt.Fprintf(&b, "older: the backup is older than revision %d (generation %d), which this machine has seen: restoring it rolls the vault back\n",
			newest.Revision, newest.Generation)
		if p.Current == nil {
			b.WriteString("older: changes made since are undone (removed keys back, revocations lost, usage reset)\n")
		}
	}
	listRefs(&b, "comes back", p.Back)
	listRefs(&b, "goes away", p.Gone)
	for i, r := range p.RevocationsLost {
		if i == maxPlanLines {
			fmt.Fprintf(&b, "revocation lost: and %d more\n", len(p.RevocationsLost)-i)
			break
		}
		fmt.Fprintf(&b, "revocation lost: token %s of %s is active again until %s\n", r.JTI, r.ClientID, r.ExpiresAt.UTC().Format("2006-01-02T15:04:05Z"))
	}
	for i, u := range p.UsageLower {
		if i == maxPlanLines {
			fmt.Fprintf(&b, "usage goes back: and %d more\n", len(p.UsageLower)-i)
			break
		}
		fmt.Fprintf(&b, "usage goes back: %s in %s from %d to %d\n", cmp.Or(u.Name, u.ID), u.Period, u.Now, u.Backup)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// maxPlanLines bounds each list of a restore plan in text; -o json has all.
const maxPlanLines = 20

func listRefs(b *strings.Builder, what string, refs []vault.RecordRef) {
	for i, r := range refs {
		if i == maxPlanLines {
			fmt.Fprintf(b, "%s: and %d more\n", what, len(refs)-i)
			return
		}
		fmt.Fprintf(b, "%s: %s %s (%s)\n", what, r.Kind, r.Name, r.ID)
	}
}

func restoredLine(p *vault.RestorePlan) string {
	return fmt.Sprintf("restored %s to revision %d (generation %d), now this machine's newest state of the vault", p.Target, p.Backup.Revision, p.Backup.Generation)
}
