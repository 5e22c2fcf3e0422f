package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keymint/keymint/apikey"
	"github.com/keymint/keymint/token"
	"github.com/keymint/keymint/vault"
)

type initOptions struct {
	recipients []string
	passphrase bool
	keyPrefix  string
	alg        string
	issuer     string
}

func newInitCmd(a *app) *cobra.Command {
	var o initOptions
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a vault",
		Long: `Create a new vault.

With --recipient (repeatable), the vault's data key is encrypted to those
recipients: age X25519 (age1...), hybrid post-quantum (age1pq1...), SSH
public keys (ssh-ed25519, ssh-rsa) or age plugin recipients. A team shares a
vault by listing each member.

With --passphrase, it is encrypted to a passphrase alone, read from
KEYMINT_PASSPHRASE, --passphrase-file, or typed twice at the terminal.
Unlocking then costs about a second, by design.

With neither, keymint generates a hybrid post-quantum age identity, writes it
with mode 0600 to the identity path (--identity, default
$XDG_CONFIG_HOME/keymint/identity.txt) and prints its recipient. If an
identity file is already there, keymint uses it instead.`,
		Example: `  keymint init
  keymint init --recipient age1pq1... --recipient "ssh-ed25519 AAAA... alice"
  KEYMINT_PASSPHRASE_FILE=pass.txt keymint init --passphrase`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			return a.runInit(o)
		},
	}
	cmd.Flags().StringArrayVar(&o.recipients, "recipient", nil, "encrypt to this recipient (repeatable)")
	cmd.Flags().BoolVar(&o.passphrase, "passphrase", false, "encrypt to a passphrase instead of recipients")
	cmd.Flags().StringVar(&o.keyPrefix, "key-prefix", apikey.DefaultKeyPrefix, fmt.Sprintf("prefix of API keys, %s; client secrets get the prefix followed by %q", apikey.KeyPrefixRule, apikey.ClientSecretMark))
	cmd.Flags().StringVar(&o.alg, "alg", string(token.DefaultAlg), "algorithm of the JWT signing key: ES256, RS256, RS512 or EdDSA")
	cmd.Flags().StringVar(&o.issuer, "issuer", "", "record the vault's issuer URL, which token issue, token verify and serve use unless given another (default "+token.DefaultIssuer+")")
	return cmd
}

type initResult struct {
	Vault        string   `json:"vault"`
	Recipients   []string `json:"recipients,omitempty"`
	Passphrase   bool     `json:"passphrase"`
	IdentityFile string   `json:"identity_file,omitempty"`
	NewIdentity  bool     `json:"new_identity"`
	SigningKey   string   `json:"signing_key"`
	SigningAlg   string   `json:"signing_alg"`
	Issuer       string   `json:"issuer,omitempty"`
}

func (a *app) runInit(o initOptions) error {
	alg, err := o.check()
	if err != nil {
		return err
	}
	loc, err := a.location()
	if err != nil {
		return err
	}
	switch err := loc.Exists(); {
	case err == nil:
		return fmt.Errorf("%s: %w", loc, vault.ErrExists)
	case !errors.Is(err, vault.ErrNoVault):
		return err
	}
	res := initResult{Vault: loc.String()}
	recipients, undoIdentity, err := a.initRecipients(o, &res)
	if err != nil {
		return err
	}
	signingKey, err := token.GenerateSigningKey(alg, a.now())
	if err != nil {
		undoIdentity()
		return err
	}
	err = vault.CreateAt(loc, vault.CreateOptions{
		Recipients:     recipients,
		RecipientNames: res.Recipients,
		Settings:       vault.Settings{KeyPrefix: o.keyPrefix, ClientSecretPrefix: apikey.ClientSecretPrefix(o.keyPrefix), Issuer: o.issuer},
		Options:        vault.Options{Now: a.now, LockTimeout: a.cfg.LockTimeout, Actor: actor(), Command: a.command, StateDir: a.stateDir()},
		Setup: func(tx *vault.Tx) error {
			return tx.AddSigningKey(token.ToVault(signingKey), maxTokenTTL)
		},
	})
	if err != nil {
		// A vault that was moved into place before a later step failed is
		// encrypted to the new identity, which must then stay. One that
		// appeared meanwhile (ErrExists) is another's.
		if errors.Is(err, vault.ErrExists) || errors.Is(loc.Exists(), vault.ErrNoVault) {
			undoIdentity()
		}
		return err
	}
	res.SigningKey, res.SigningAlg, res.Issuer = signingKey.ID, string(signingKey.Alg), o.issuer
	return a.printInit(res)
}

// check validates the flags on their own, before anything is read or
// written, normalizes --issuer, and returns the signing key's algorithm.
func (o *initOptions) check() (token.Alg, error) {
	if o.passphrase && len(o.recipients) > 0 {
		return "", usagef("--passphrase and --recipient cannot be combined: age allows a passphrase only on its own")
	}
	if apikey.ValidateKeyPrefix(o.keyPrefix) != nil {
		return "", usagef("--key-prefix %q: use %s", o.keyPrefix, apikey.KeyPrefixRule)
	}
	alg, err := token.ParseAlg(o.alg)
	if err != nil {
		return "", usageError{fmt.Errorf("--alg: %w", err)}
	}
	if o.issuer != "" {
		if o.issuer, err = token.CheckIssuer(o.issuer); err != nil {
			return "", usageError{fmt.Errorf("invalid --issuer: %w", err)}
		}
	}
	return alg, nil
}

// initRecipients is what the new vault is encrypted to: a passphrase, the
// recipients given, or the identity file's, which it makes if it is
// missing. It records them in res. undo takes back an identity file it
// made; it never fails and is never nil.
func (a *app) initRecipients(o initOptions, res *initResult) (recipients []vault.Recipient, undo func(), err error) {
	undo = func() {}
	switch {
	case o.passphrase:
		pass, err := a.newPassphrase()
		if err != nil {
			return nil, undo, err
		}
		r, _, err := vault.Passphrase(pass)
		if err != nil {
			return nil, undo, err
		}
		recipients, res.Passphrase = []vault.Recipient{r}, true
	case len(o.recipients) > 0:
		for _, s := range o.recipients {
			r, err := vault.ParseRecipient(s, a.pluginUI())
			if err != nil {
				return nil, undo, usagef("--recipient %q: %v", s, err)
			}
			recipients = append(recipients, r)
			res.Recipients = append(res.Recipients, strings.TrimSpace(s))
		}
	default:
		r, created, err := a.ensureIdentity()
		if err != nil {
			return nil, undo, err
		}
		if created != nil {
			// A new identity that unlocks no vault is only a secret to
			// leak: if the vault is not made, take it back. Once the vault
			// is made, the identity is what unlocks it and is never removed.
			path := a.cfg.Identity
			undo = func() { removeCreated(path, created) }
		}
		recipients, res.Recipients = []vault.Recipient{r}, []string{fmt.Sprint(r)}
		res.IdentityFile, res.NewIdentity = a.cfg.Identity, created != nil
	}
	return recipients, undo, nil
}

func (a *app) printInit(res initResult) error {
	if a.json() {
		return a.writeJSON(res)
	}
	fmt.Fprintf(a.io.Out, "created vault %s with an %s signing key\n", res.Vault, res.SigningAlg)
	switch {
	case res.Passphrase:
		fmt.Fprintln(a.io.Out, "locked with a passphrase")
	case res.IdentityFile != "":
		verb := "using existing identity"
		if res.NewIdentity {
			verb = "wrote new identity to"
		}
		fmt.Fprintf(a.io.Out, "%s %s (keep it safe: it unlocks the vault)\n", verb, res.IdentityFile)
	}
	for _, r := range res.Recipients {
		fmt.Fprintf(a.io.Out, "recipient: %s\n", r)
	}
	return nil
}

// ensureIdentity returns the recipient of the identity file, generating the
// file if it is missing. If it generated the file, it returns what it wrote
// (a new secret key, so unique), so that a failed init removes that file and
// no other.
func (a *app) ensureIdentity() (vault.Recipient, []byte, error) {
	path := a.cfg.Identity
	if fileExists(path) {
		ids, err := vault.ReadIdentityFile(path, a.pluginUI())
		if err != nil {
			return nil, nil, err
		}
		if r, ok := vault.RecipientOf(ids[0]); ok {
			return r, nil, nil
		}
		return nil, nil, fmt.Errorf("identity file %s holds no age X25519 or hybrid identity; pass its recipient with --recipient", path)
	}
	id, err := vault.GenerateIdentityFile(a.now())
	if err != nil {
		return nil, nil, err
	}
	if err := writeSecretFile(path, id.Contents); err != nil {
		return nil, nil, err
	}
	return id.Recipient, id.Contents, nil
}

// removeCreated removes the identity file at path if it still holds what
// init wrote, never a file put there since.
func removeCreated(path string, wrote []byte) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	got, err := io.ReadAll(io.LimitReader(f, int64(len(wrote))+1))
	f.Close()
	if err == nil && bytes.Equal(got, wrote) {
		os.Remove(path)
	}
}

// newPassphrase reads a new passphrase from the environment or file, or asks
// twice at the terminal.
func (a *app) newPassphrase() (string, error) {
	pass, err := a.passphraseFromConfig()
	if err != nil || pass != "" {
		return pass, err
	}
	if !a.io.canPrompt() {
		return "", errors.New("no passphrase: set KEYMINT_PASSPHRASE or --passphrase-file, or run in a terminal to type it")
	}
	pass, err = a.io.readSecret("New vault passphrase: ")
	if err != nil {
		return "", err
	}
	if len(pass) < 8 {
		return "", errors.New("passphrase is shorter than 8 characters; choose a longer one")
	}
	again, err := a.io.readSecret("Repeat passphrase: ")
	if err != nil {
		return "", err
	}
	if again != pass {
		return "", errors.New("the passphrases do not match; run keymint init again")
	}
	return pass, nil
}

// writeSecretFile creates path with mode 0600 in a 0700 directory, through a
// fsynced temporary file renamed into place. It never replaces a file.
func writeSecretFile(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create directory for %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(dir, ".keymint-*")
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("chmod %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	return os.Remove(tmp.Name())
}
