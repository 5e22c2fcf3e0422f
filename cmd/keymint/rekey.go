package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/keymint/keymint/vault"
)

type rekeyOptions struct {
	yes bool
}

type rekeyJSON struct {
	Rekeyed bool `json:"rekeyed"`
	*vault.RekeyReport
	Passphrase bool `json:"passphrase"`
}

func newVaultRekeyCmd(a *app) *cobra.Command {
	var o rekeyOptions
	cmd := &cobra.Command{
		Use:   "rekey",
		Short: "Seal every record under a new data key; every secret stays valid",
		Long: `Seal every record of the vault under a new, random data key, and encrypt that
key to the vault's recipients (or its passphrase). Every API key, client
secret, refresh token and signing key keeps working: secrets are looked up by
an HMAC whose key is carried over.

What it protects against: anyone who had the old data key, such as a
recipient removed with ` + "`keymint vault recipients rm`" + ` (who could have kept it
while they could unlock the vault), or a data key that leaked. After a rekey
the old key opens nothing in this file. It cannot reach copies of the vault
taken before (backups included): they stay sealed under the old key.

It is one transaction: if it is interrupted, the vault is left as it was,
under the old key. Other commands wait for it. A running ` + "`keymint serve`" + `
must be restarted afterwards, since the key it unlocked no longer opens the
vault. On a terminal it shows a progress bar on stderr.

On a terminal it asks for confirmation; --yes skips the question, and is
needed when there is no terminal to ask on.`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			return a.runVaultRekey(o)
		},
	}
	cmd.Flags().BoolVarP(&o.yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

func (a *app) runVaultRekey(o rekeyOptions) error {
	if err := a.needConfirmation(o.yes, "rekey"); err != nil {
		return err
	}
	u, err := a.openVaultKeepingIdentities()
	if err != nil {
		return err
	}
	l, err := u.v.Recipients()
	if err != nil {
		return err
	}
	if l.Passphrase && u.pass == "" {
		return fmt.Errorf("%w: unlock it with the passphrase (KEYMINT_PASSPHRASE, --passphrase-file, or typed at a terminal)", vault.ErrPassphraseNeeded)
	}
	encryptedTo := plural(len(l.Recipients), "recipient")
	if l.Passphrase {
		encryptedTo = "its passphrase"
	}
	if err := a.confirm(o.yes, fmt.Sprintf("Re-seal every record of %s under a new data key, encrypted to %s?", a.cfg.Vault, encryptedTo)); err != nil {
		return err
	}
	opts := vault.RekeyOptions{UI: a.pluginUI()}
	if l.Passphrase {
		opts.Passphrase = u.pass
	}
	var bar *progressbar.ProgressBar
	if writerIsTerminal(a.io.Err) {
		opts.Progress = func(done, total int) {
			if bar == nil {
				bar = a.rekeyProgress(total)
			}
			bar.Set(done)
		}
	}
	start := time.Now()
	_, rep, err := u.v.Rekey(opts)
	if bar != nil {
		if err == nil {
			bar.Finish()
		}
		fmt.Fprintln(a.io.Err)
	}
	if err != nil {
		return err
	}
	if a.json() {
		return a.writeJSON(rekeyJSON{Rekeyed: true, RekeyReport: rep, Passphrase: l.Passphrase})
	}
	to := plural(rep.Recipients, "recipient")
	if l.Passphrase {
		to = "the passphrase"
	}
	_, err = fmt.Fprintf(a.io.Out, "rekeyed: %s re-sealed under a new data key, encrypted to %s, in %s; every secret stays valid; a running keymint serve goes on under the new key if its identity is still a recipient\n",
		plural(rep.Records, "record"), to, time.Since(start).Round(time.Millisecond))
	return err
}

// rekeyProgress is the progress bar on stderr, made only when stderr is a
// terminal: nothing goes to a pipe or a log.
func (a *app) rekeyProgress(total int) *progressbar.ProgressBar {
	return progressbar.NewOptions(total,
		progressbar.OptionSetWriter(a.io.Err),
		progressbar.OptionSetDescription("re-sealing records"),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetPredictTime(true),
	)
}

// writerIsTerminal reports whether w is a terminal.
func writerIsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
