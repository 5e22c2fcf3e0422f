package vault

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"filippo.io/age"
	"filippo.io/age/agessh"
	"filippo.io/age/plugin"
)

// Identity unlocks a vault: an age identity (X25519, hybrid post-quantum,
// plugin), an SSH private key, or a passphrase's scrypt identity. It is
// age's interface under vault's name, so that nothing above vault imports
// age.
type Identity = age.Identity

// Recipient is what a vault's data key is encrypted to.
type Recipient = age.Recipient

// PluginUI lets an age plugin (a hardware key, say) talk to a person.
type PluginUI = plugin.ClientUI

// NewIdentityFile is a newly generated identity as an identity file holds
// it, with its public recipient.
type NewIdentityFile struct {
	Identity  Identity
	Recipient Recipient
	// Contents is the identity file: comments with the creation time and
	// the recipient, then the secret identity. Write it 0600.
	Contents []byte
}

// GenerateIdentityFile makes a new hybrid post-quantum identity (the default
// for new vaults) and the identity file that holds it.
func GenerateIdentityFile(now time.Time) (*NewIdentityFile, error) {
	id, err := NewIdentity()
	if err != nil {
		return nil, err
	}
	contents := fmt.Sprintf("# created: %s\n# public key: %s\n%s\n", now.UTC().Format(time.RFC3339), id.Recipient(), id)
	return &NewIdentityFile{Identity: id, Recipient: id.Recipient(), Contents: []byte(contents)}, nil
}

// RecipientOf returns the recipient of a native age identity (hybrid or
// X25519). ok is false for others (SSH keys, plugins, passphrases), whose
// recipient cannot be derived here.
func RecipientOf(id Identity) (r Recipient, ok bool) {
	switch id := id.(type) {
	case *age.HybridIdentity:
		return id.Recipient(), true
	case *age.X25519Identity:
		return id.Recipient(), true
	}
	return nil, false
}

// ParseRecipient parses one recipient: a native age X25519 (age1...) or hybrid
// post-quantum (age1pq1...) recipient, an SSH public key (ssh-ed25519,
// ssh-rsa), or an age plugin recipient (age1name1...). Plugin recipients run
// the plugin binary (age-plugin-NAME on $PATH) when the data key is wrapped.
func ParseRecipient(s string, ui *plugin.ClientUI) (age.Recipient, error) {
	s = strings.TrimSpace(s)
	switch {
	case strings.HasPrefix(s, "ssh-"):
		r, err := agessh.ParseRecipient(s)
		if err != nil {
			return nil, fmt.Errorf("parse SSH recipient: %w", err)
		}
		return r, nil
	case isPluginRecipient(s):
		r, err := plugin.NewRecipient(s, ui)
		if err != nil {
			return nil, fmt.Errorf("parse plugin recipient: %w", err)
		}
		return r, nil
	case strings.HasPrefix(s, "age1"):
		rs, err := age.ParseRecipients(strings.NewReader(s))
		if err != nil {
			return nil, fmt.Errorf("parse age recipient: %w", err)
		}
		return rs[0], nil
	}
	return nil, errors.New("unknown recipient type: use an age1... recipient, an ssh-ed25519 or ssh-rsa public key, or a plugin recipient")
}

// isPluginRecipient reports whether s is age1NAME1..., where NAME is a plugin
// name: native recipients have an empty NAME (age1...) or "pq" (age1pq1...).
func isPluginRecipient(s string) bool {
	if !strings.HasPrefix(s, "age1") {
		return false
	}
	rest := s[len("age1"):]
	i := strings.IndexByte(rest, '1')
	return i > 0 && rest[:i] != "pq"
}

// ParseIdentities reads identities: an age identity file (X25519, hybrid and
// plugin identities, one per line, # comments) or an SSH private key in PEM
// or OpenSSH form. The input may hold secrets, so errors never quote it.
func ParseIdentities(r io.Reader, ui *plugin.ClientUI) ([]age.Identity, error) {
	data, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read identity: %w", err)
	}
	if bytes.Contains(data, []byte("PRIVATE KEY-----")) {
		id, err := agessh.ParseIdentity(data)
		if err != nil {
			return nil, fmt.Errorf("parse SSH private key (passphrase-protected SSH keys are not supported): %w", err)
		}
		return []age.Identity{id}, nil
	}
	var ids []age.Identity
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var id age.Identity
		if strings.HasPrefix(line, "AGE-PLUGIN-") {
			id, err = plugin.NewIdentity(line, ui)
		} else {
			var parsed []age.Identity
			parsed, err = age.ParseIdentities(strings.NewReader(line))
			if err == nil {
				id = parsed[0]
			}
		}
		if err != nil {
			return nil, fmt.Errorf("identity on line %d is not an age identity or SSH private key", n)
		}
		ids = append(ids, id)
	}
	if err := sc.Err(); err != nil {
		// A line too long to scan: do not drop the identities after it.
		return nil, fmt.Errorf("read identity: %w", err)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("%w: no identity found in the input", ErrNoIdentity)
	}
	return ids, nil
}

// ReadIdentityFile reads identities from path, refusing, as ssh does with
// private keys, a file that others can read ([ErrIdentityPerm]) or that
// others could alter or replace ([ErrUnsafePerm], see [CheckPrivateFile]).
func ReadIdentityFile(path string, ui *plugin.ClientUI) ([]age.Identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open identity file: %w", err)
	}
	defer f.Close()
	// The open file's mode and owner, not the path's: the file checked is
	// the one read, even if the path is swapped meanwhile.
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat identity file: %w", err)
	}
	if perm := st.Mode().Perm(); checksPerms && perm&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o; run `chmod 600 %s`", ErrIdentityPerm, path, perm, shellQuote(path))
	}
	if err := checkPrivate(path, "identity file", st, os.Geteuid()); err != nil {
		return nil, err
	}
	ids, err := ParseIdentities(f, ui)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ids, nil
}

// Passphrase returns the recipient and identity for a passphrase-only vault.
// age allows a passphrase (scrypt) recipient only on its own.
func Passphrase(pass string) (age.Recipient, age.Identity, error) {
	r, err := age.NewScryptRecipient(pass)
	if err != nil {
		return nil, nil, fmt.Errorf("passphrase recipient: %w", err)
	}
	id, err := age.NewScryptIdentity(pass)
	if err != nil {
		return nil, nil, fmt.Errorf("passphrase identity: %w", err)
	}
	return r, id, nil
}

// NewIdentity generates a hybrid post-quantum age identity (ML-KEM-768 +
// X25519), the default for new vaults.
func NewIdentity() (*age.HybridIdentity, error) {
	id, err := age.GenerateHybridIdentity()
	if err != nil {
		return nil, fmt.Errorf("generate identity: %w", err)
	}
	return id, nil
}
