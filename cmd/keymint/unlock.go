package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/keymint/keymint/agent"
	"github.com/keymint/keymint/vault"
)

// errNoUnlock is returned when nothing can unlock the vault and no person is
// there to type a passphrase: never wait for input that will not come.
var errNoUnlock = errors.New("nothing to unlock the vault with: set --identity FILE (KEYMINT_IDENTITY_FILE), KEYMINT_IDENTITY, KEYMINT_PASSPHRASE or --passphrase-file, start an agent (keymint agent start), or run in a terminal to type the passphrase")

// openVault unlocks the configured vault.
func (a *app) openVault() (*vault.Vault, error) {
	return a.openVaultWith(func(*vault.Options) {})
}

// openVaultWith unlocks the configured vault with options adjusted: with
// the key of the vault's agent if one is running and no source is set
// explicitly, else from the first source set (see identities).
func (a *app) openVaultWith(adjust func(*vault.Options)) (*vault.Vault, error) {
	loc, err := a.location()
	if err != nil {
		return nil, err
	}
	return a.openVaultAt(loc, adjust)
}

// openVaultAt is openVaultWith for the vault at loc.
func (a *app) openVaultAt(loc vault.Location, adjust func(*vault.Options)) (*vault.Vault, error) {
	// Say there is no vault before asking for what would unlock it: never
	// prompt for a passphrase, or advise setting an identity, for nothing.
	if err := loc.Exists(); err != nil {
		return nil, err
	}
	v, agentErr := a.openWithAgent(loc, adjust)
	if v != nil {
		return v, nil
	}
	ids, source, err := a.identities()
	if errors.Is(err, errNoUnlock) && agentErr != nil {
		// The agent was the only way in: say why it was not.
		return nil, agentErr
	}
	if err != nil {
		return nil, err
	}
	if agentErr != nil {
		fmt.Fprintf(a.io.Err, "keymint: not using the agent: %s\n", oneLine(agentErr.Error()))
	}
	v, err = a.openAt(loc, a.vaultOptions(func(o *vault.Options) { o.Identities = ids }, adjust))
	if errors.Is(err, vault.ErrWrongIdentity) {
		// Name the source tried: it was the only one.
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	if err != nil {
		return nil, err
	}
	return v, nil
}

// vaultOptions are the options every command opens the vault with, then
// adjusted.
func (a *app) vaultOptions(adjust ...func(*vault.Options)) vault.Options {
	opts := vault.Options{Now: a.now, LockTimeout: a.cfg.LockTimeout, Actor: actor(), Command: a.command, StateDir: a.stateDir()}
	for _, f := range adjust {
		f(&opts)
	}
	return opts
}

// explicitSource reports whether an identity or passphrase is set by the
// environment, a flag or the config file: then it is the one used, and an
// agent is not asked.
func (a *app) explicitSource() bool {
	return a.getenv("KEYMINT_IDENTITY") != "" || a.cfg.identityExplicit ||
		a.getenv("KEYMINT_PASSPHRASE") != "" || a.cfg.PassphraseFile != ""
}

// openWithAgent opens the vault with the data key of its agent (keymint
// agent start). It returns no vault, to unlock as usual, when a source is
// set explicitly, when no agent runs for this vault, or when the options
// ask to follow rekeys (serve), which needs the identity itself; and no
// vault but an error when an agent runs but cannot help, such as one that
// holds the key from before a rekey.
func (a *app) openWithAgent(loc vault.Location, adjust func(*vault.Options)) (*vault.Vault, error) {
	opts := a.vaultOptions(adjust)
	if a.explicitSource() || opts.FollowRekey {
		return nil, nil
	}
	// Most commands run with no agent at all: say so without reading the
	// vault's Lock, one more transaction at every start.
	if dir, err := agent.Dir(a.getenv("XDG_RUNTIME_DIR"), false); err != nil || !agent.AnyIn(dir) {
		return nil, nil
	}
	path, lock, err := a.agentSocketOf(loc)
	if err != nil {
		return nil, nil // no agent, or a vault that the usual open will report on
	}
	key, err := agent.Key(path, lock)
	if errors.Is(err, agent.ErrNoAgent) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer clear(key)
	opts.DataKey = key
	v, err := a.openAt(loc, opts)
	if err != nil {
		// Rekeyed between the two reads, or a failure the usual open
		// reports itself.
		return nil, nil
	}
	return v, nil
}

// identities returns what unlocks the vault, and names its source. The first
// source that is set is the only one used, in this order: an identity in
// KEYMINT_IDENTITY, an identity file named by --identity or
// KEYMINT_IDENTITY_FILE, a passphrase from KEYMINT_PASSPHRASE or
// --passphrase-file, the default identity file if it exists, and last a
// passphrase typed at the terminal. A wrong or unreadable identity from the
// chosen source is an error, never a fall through to the next: a later source
// must not unlock what the one the user set could not, nor stop it unlocking.
func (a *app) identities() ([]vault.Identity, string, error) {
	ui := a.pluginUI()
	if s := a.getenv("KEYMINT_IDENTITY"); s != "" {
		ids, err := vault.ParseIdentities(strings.NewReader(s), ui)
		if err != nil {
			return nil, "", fmt.Errorf("KEYMINT_IDENTITY: %w", err)
		}
		return ids, "KEYMINT_IDENTITY", nil
	}
	if a.cfg.identityExplicit {
		ids, err := vault.ReadIdentityFile(a.cfg.Identity, ui)
		if err != nil {
			return nil, "", err
		}
		return ids, "identity file " + a.cfg.Identity, nil
	}
	pass, source, err := a.passphraseSource()
	if err != nil {
		return nil, "", err
	}
	if pass != "" {
		return passphraseIdentity(pass, source)
	}
	if fileExists(a.cfg.Identity) {
		ids, err := vault.ReadIdentityFile(a.cfg.Identity, ui)
		if err != nil {
			return nil, "", err
		}
		return ids, "default identity file " + a.cfg.Identity, nil
	}
	if !a.io.canPrompt() {
		return nil, "", errNoUnlock
	}
	pass, err = a.io.readSecret("Vault passphrase: ")
	if err != nil {
		return nil, "", err
	}
	return passphraseIdentity(pass, "the passphrase typed")
}

func passphraseIdentity(pass, source string) ([]vault.Identity, string, error) {
	_, id, err := vault.Passphrase(pass)
	if err != nil {
		return nil, "", err
	}
	return []vault.Identity{id}, source, nil
}

// passphraseFromConfig returns the passphrase from KEYMINT_PASSPHRASE or the
// first line of --passphrase-file, or "" if neither is set.
func (a *app) passphraseFromConfig() (string, error) {
	pass, _, err := a.passphraseSource()
	return pass, err
}

// passphraseSource is passphraseFromConfig that also names where the
// passphrase came from.
func (a *app) passphraseSource() (pass, source string, err error) {
	if p := a.getenv("KEYMINT_PASSPHRASE"); p != "" {
		return p, "KEYMINT_PASSPHRASE", nil
	}
	if a.cfg.PassphraseFile == "" {
		return "", "", nil
	}
	f, err := os.Open(a.cfg.PassphraseFile)
	if err != nil {
		return "", "", fmt.Errorf("passphrase file: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() || sc.Text() == "" {
		return "", "", fmt.Errorf("passphrase file %s: first line is empty", a.cfg.PassphraseFile)
	}
	return strings.TrimRight(sc.Text(), "\r"), "passphrase file " + a.cfg.PassphraseFile, nil
}

// pluginUI lets age plugins (hardware keys) talk to a person on stderr.
func (a *app) pluginUI() *vault.PluginUI {
	return &vault.PluginUI{
		DisplayMessage: func(name, msg string) error {
			fmt.Fprintf(a.io.Err, "age-plugin-%s: %s\n", name, msg)
			return nil
		},
		RequestValue: func(name, prompt string, _ bool) (string, error) {
			return a.io.readSecret(fmt.Sprintf("age-plugin-%s: %s ", name, prompt))
		},
		Confirm: func(name, prompt, yes, no string) (bool, error) {
			fmt.Fprintf(a.io.Err, "age-plugin-%s: %s [%s/%s]\n", name, prompt, yes, no)
			ans, err := a.io.readSecret("")
			return err == nil && strings.EqualFold(strings.TrimSpace(ans), yes), err
		},
		WaitTimer: func(name string) {
			fmt.Fprintf(a.io.Err, "age-plugin-%s: waiting (touch your security key?)\n", name)
		},
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// update opens the vault and runs fn in one write transaction.
func (a *app) update(fn func(*vault.Tx) error) error {
	v, err := a.openVault()
	if err != nil {
		return err
	}
	return v.Update(fn)
}

// view opens the vault and runs fn in one read transaction.
func (a *app) view(fn func(*vault.Tx) error) error {
	v, err := a.openVault()
	if err != nil {
		return err
	}
	return v.View(fn)
}

// unlockedVault is an open vault with what unlocked it: changing the
// recipients decrypts the data key again, and a passphrase vault's rekey
// encrypts the new one to its passphrase.
type unlockedVault struct {
	v    *vault.Vault
	ids  []vault.Identity
	pass string // the passphrase, when one unlocked it
}

// openVaultKeepingIdentities unlocks the vault as openVault does, in the
// same order of sources (see identities), and keeps what unlocked it, for
// the commands that need it again: recipients and rekey (to decrypt and
// re-wrap the data key) and backup (a passphrase vault's backup is
// encrypted to its passphrase). A passphrase typed at the terminal is
// asked for here, once.
func (a *app) openVaultKeepingIdentities() (*unlockedVault, error) {
	loc, err := a.location()
	if err != nil {
		return nil, err
	}
	if err := loc.Exists(); err != nil {
		return nil, err
	}
	var ids []vault.Identity
	var source, pass string
	if a.getenv("KEYMINT_IDENTITY") == "" && !a.cfg.identityExplicit {
		var err error
		if pass, source, err = a.passphraseSource(); err != nil {
			return nil, err
		}
		if pass == "" && !fileExists(a.cfg.Identity) && a.io.canPrompt() {
			if pass, err = a.io.readSecret("Vault passphrase: "); err != nil {
				return nil, err
			}
			source = "the passphrase typed"
		}
		if pass != "" {
			if ids, source, err = passphraseIdentity(pass, source); err != nil {
				return nil, err
			}
		}
	}
	if ids == nil {
		var err error
		if ids, source, err = a.identities(); err != nil {
			return nil, err
		}
	}
	v, err := a.openAt(loc, a.vaultOptions(func(o *vault.Options) { o.Identities = ids }))
	if errors.Is(err, vault.ErrWrongIdentity) {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	if err != nil {
		return nil, err
	}
	return &unlockedVault{v: v, ids: ids, pass: pass}, nil
}
