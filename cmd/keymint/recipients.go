package main

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keymint/keymint/vault"
)

func newVaultRecipientsCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "recipients",
		Short: "List, add or remove who can unlock the vault",
		Long: `List, add or remove the age recipients the vault's data key is encrypted to:
everyone whose identity matches one of them can unlock the vault.

Adding or removing a recipient re-encrypts the data key only; the records stay
sealed under the same data key. A removed recipient can no longer unlock this
vault with their identity, but may have kept the data key itself while they
could: run ` + "`keymint vault rekey`" + ` after removing someone.

Post-quantum (age1pq1...) and classic (age1..., ssh-...) recipients cannot be
mixed, as age refuses to. A vault locked with a passphrase has no recipients:
age allows a passphrase only on its own.`,
	}
	cmd.AddCommand(newRecipientsLsCmd(a), newRecipientsAddCmd(a), newRecipientsRmCmd(a))
	return cmd
}

type recipientsJSON struct {
	Passphrase bool     `json:"passphrase"`
	Recipients []string `json:"recipients"`
}

func newRecipientsLsCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "ls",
		Short: "List the recipients the vault's data key is encrypted to",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			v, err := a.openVault()
			if err != nil {
				return err
			}
			l, err := v.Recipients()
			if err != nil {
				return err
			}
			if a.json() {
				return a.writeJSON(recipientsJSON{Passphrase: l.Passphrase, Recipients: l.Recipients})
			}
			if l.Passphrase {
				_, err := fmt.Fprintln(a.io.Out, "this vault is locked with a passphrase: it has no recipients (age allows a passphrase only on its own)")
				return err
			}
			for _, r := range l.Recipients {
				if _, err := fmt.Fprintln(a.io.Out, r); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

type recipientsAddOptions struct {
	files []string
}

func newRecipientsAddCmd(a *app) *cobra.Command {
	var o recipientsAddOptions
	cmd := &cobra.Command{
		Use:   "add [RECIPIENT...] [--file FILE]",
		Short: "Encrypt the vault's data key to more recipients",
		Long: `Encrypt the vault's data key to more recipients: age X25519 (age1...) or
post-quantum (age1pq1...) recipients, SSH public keys (ssh-ed25519, ssh-rsa) or
age plugin recipients, as arguments or from a recipients file (--file FILE, one
per line, # comments; - reads stdin). Nothing changes unless every one of them
is well formed, new, and of the vault's kind (post-quantum or classic).`,
		Example: `  keymint vault recipients add age1pq1...
  keymint vault recipients add --file team.txt`,
		RunE: func(_ *cobra.Command, args []string) error {
			return a.runRecipientsAdd(args, o)
		},
	}
	cmd.Flags().StringArrayVarP(&o.files, "file", "f", nil, "read recipients from `FILE`, one per line (- for stdin; repeatable)")
	return cmd
}

func (a *app) runRecipientsAdd(args []string, o recipientsAddOptions) error {
	add := append([]string(nil), args...)
	for _, f := range o.files {
		rs, err := a.readRecipientsFile(f)
		if err != nil {
			return err
		}
		add = append(add, rs...)
	}
	if len(add) == 0 {
		return usagef("no recipient to add: give age1... recipients as arguments or --file FILE")
	}
	u, err := a.openVaultKeepingIdentities()
	if err != nil {
		return err
	}
	added, err := u.v.AddRecipients(u.ids, add, a.pluginUI())
	if err != nil {
		return recipientsError(err)
	}
	l, err := u.v.Recipients()
	if err != nil {
		return err
	}
	if a.json() {
		return a.writeJSON(map[string]any{"added": added, "recipients": l.Recipients})
	}
	for _, r := range added {
		fmt.Fprintf(a.io.Out, "added %s\n", r)
	}
	_, err = fmt.Fprintf(a.io.Out, "the vault now has %s\n", plural(len(l.Recipients), "recipient"))
	return err
}

// readRecipientsFile reads a recipients file as age -R does: one recipient
// a line, blank lines and # comments skipped; "-" is stdin.
func (a *app) readRecipientsFile(name string) ([]string, error) {
	var r io.Reader = a.io.In
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("recipients file: %w", err)
		}
		defer f.Close()
		r = f
	}
	var out []string
	sc := bufio.NewScanner(io.LimitReader(r, 1<<20))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("recipients file %s: %w", name, err)
	}
	if len(out) == 0 {
		return nil, usagef("recipients file %s holds no recipient", name)
	}
	return out, nil
}

type recipientsRmOptions struct {
	yes bool
}

func newRecipientsRmCmd(a *app) *cobra.Command {
	var o recipientsRmOptions
	cmd := &cobra.Command{
		Use:   "rm RECIPIENT...",
		Short: "Stop encrypting the vault's data key to recipients; then run `keymint vault rekey`",
		Long: `Stop encrypting the vault's data key to the recipients given. The last
recipient cannot be removed: someone must be able to unlock the vault.

This re-encrypts the data key only. A removed recipient cannot unlock the vault
with their identity any more, but could have kept the data key itself while
they could, and with it read the vault's records: run ` + "`keymint vault rekey`" + `
afterwards to seal every record under a new data key.

On a terminal it asks for confirmation; --yes skips the question, and is
needed when there is no terminal to ask on.`,
		Args: requireArgs(1, "the recipient to remove (see `keymint vault recipients ls`)"),
		RunE: func(_ *cobra.Command, args []string) error {
			return a.runRecipientsRm(args, o)
		},
	}
	cmd.Flags().BoolVarP(&o.yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

func (a *app) runRecipientsRm(args []string, o recipientsRmOptions) error {
	if err := a.needConfirmation(o.yes, "recipients rm"); err != nil {
		return err
	}
	u, err := a.openVaultKeepingIdentities()
	if err != nil {
		return err
	}
	// Refused before asking: there is nothing to confirm.
	if l, err := u.v.Recipients(); err != nil || l.Passphrase {
		return cmp.Or(err, vault.ErrPassphraseVault)
	}
	if err := a.confirm(o.yes, fmt.Sprintf("Remove %s from the vault's recipients?", plural(len(args), "recipient"))); err != nil {
		return err
	}
	removed, err := u.v.RemoveRecipients(u.ids, args, a.pluginUI())
	if err != nil {
		return recipientsError(err)
	}
	l, err := u.v.Recipients()
	if err != nil {
		return err
	}
	if a.json() {
		return a.writeJSON(map[string]any{"removed": removed, "recipients": l.Recipients, "rekey_needed": true})
	}
	for _, r := range removed {
		fmt.Fprintf(a.io.Out, "removed %s\n", r)
	}
	_, err = fmt.Fprintf(a.io.Out, "the vault now has %s; the removed may have kept the data key: run `keymint vault rekey` now\n", plural(len(l.Recipients), "recipient"))
	return err
}

// recipientsError adds what to do to the vault's refusals.
func recipientsError(err error) error {
	switch {
	case errors.Is(err, vault.ErrWrongIdentity):
		return fmt.Errorf("the data key must be decrypted again to re-encrypt it, and what unlocked the vault no longer does: %w", err)
	}
	return err
}
