package vault

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"strings"

	"filippo.io/age"
	"filippo.io/age/agessh"
	"filippo.io/age/plugin"
)

// Recipients.
//
// The data key is age-encrypted to the vault's recipients; their public
// strings are kept sealed in the settings, since the age header names only
// the kind of each (its stanza types). Adding or removing a recipient
// re-encrypts the data key alone, in one transaction: every record stays
// sealed under the same data key. A removed recipient may have kept that
// key, which is why a removal is followed by a rekey (rekey.go).

var (
	// ErrPassphraseVault reports a change of recipients on a vault locked
	// with a passphrase: age allows a passphrase (scrypt) recipient only on
	// its own, so such a vault has no list of recipients to change.
	ErrPassphraseVault = errors.New("this vault is locked with a passphrase, which age allows only on its own: it has no recipients to add or remove; to share a vault, make one with `keymint init --recipient` for each member")
	// ErrLastRecipient reports a removal that would leave nobody able to
	// open the vault.
	ErrLastRecipient = errors.New("refusing to remove the vault's last recipient: nobody could open the vault; add the new recipient first, then remove the old one")
	// ErrRecipientExists reports adding a recipient the vault has already.
	ErrRecipientExists = errors.New("already a recipient of this vault")
	// ErrNotRecipient reports removing a recipient the vault does not have.
	ErrNotRecipient = errors.New("not a recipient of this vault (see `keymint vault recipients ls`)")
	// ErrRecipientsUnknown reports a vault that does not record the
	// recipients its data key is encrypted to: encrypting it to a new list
	// would lock out the ones not named.
	ErrRecipientsUnknown = errors.New("this vault does not record the recipients its data key is encrypted to, so keymint cannot encrypt it to them again without locking them out")
)

// RecipientList is who can open a vault.
type RecipientList struct {
	// Passphrase is set for a vault locked with a passphrase alone; it
	// has no recipients then.
	Passphrase bool `json:"passphrase"`
	// Recipients are the public recipients the data key is encrypted to,
	// as they were given.
	Recipients []string `json:"recipients"`
}

// Recipients lists who can open the vault.
func (v *Vault) Recipients() (*RecipientList, error) {
	out := &RecipientList{Recipients: []string{}}
	err := v.View(func(tx *Tx) error {
		pass, err := tx.passphraseLocked()
		if err != nil {
			return err
		}
		s, err := tx.Settings()
		if err != nil {
			return err
		}
		out.Passphrase = pass
		if !pass {
			out.Recipients = append(out.Recipients, s.Recipients...)
		}
		return nil
	})
	return out, err
}

// AddRecipients encrypts the data key to the vault's recipients and those
// in add. ids must open the vault (the data key is decrypted again: an
// open Vault keeps only keys derived from it); ui serves plugin
// recipients. Nothing changes unless every recipient in add is well
// formed, new, and of the same kind as the rest (post-quantum or classic,
// [ErrMixedRecipients]). It returns the recipients added, as given.
func (v *Vault) AddRecipients(ids []Identity, add []string, ui *PluginUI) ([]string, error) {
	if len(add) == 0 {
		return nil, errors.New("no recipient to add")
	}
	var added []string
	err := v.changeRecipients(ids, ui, "vault.recipients.add", func(current []string) ([]string, []string, error) {
		next := slices.Clone(current)
		added = nil
		for i, s := range add {
			s = strings.TrimSpace(s)
			c, err := canonicalRecipient(s, ui)
			if err != nil {
				return nil, nil, numbered(i, len(add), err)
			}
			if slices.ContainsFunc(next, func(n string) bool { return sameRecipient(n, c, ui) }) {
				return nil, nil, fmt.Errorf("%s: %w", s, ErrRecipientExists)
			}
			next = append(next, s)
			added = append(added, s)
		}
		return next, added, nil
	})
	return added, err
}

// RemoveRecipients encrypts the data key to the vault's recipients but
// those in rm, refusing to remove the last ([ErrLastRecipient]). A removed
// recipient can no longer decrypt the data key from this vault, but may
// have kept it: [Vault.Rekey] replaces it. It returns the recipients
// removed, as the vault had them.
func (v *Vault) RemoveRecipients(ids []Identity, rm []string, ui *PluginUI) ([]string, error) {
	if len(rm) == 0 {
		return nil, errors.New("no recipient to remove")
	}
	var removed []string
	err := v.changeRecipients(ids, ui, "vault.recipients.rm", func(current []string) ([]string, []string, error) {
		next := slices.Clone(current)
		removed = nil
		for i, s := range rm {
			s = strings.TrimSpace(s)
			c, err := canonicalRecipient(s, ui)
			if err != nil {
				return nil, nil, numbered(i, len(rm), err)
			}
			i := slices.IndexFunc(next, func(n string) bool { return sameRecipient(n, c, ui) })
			if i < 0 {
				return nil, nil, fmt.Errorf("%s: %w", s, ErrNotRecipient)
			}
			removed = append(removed, next[i])
			next = slices.Delete(next, i, i+1)
		}
		if len(next) == 0 {
			return nil, nil, ErrLastRecipient
		}
		return next, removed, nil
	})
	return removed, err
}

// changeRecipients decrypts the data key with ids, then in one transaction
// computes the new list from the current one, encrypts the data key to it,
// and records it in the settings and the audit log.
func (v *Vault) changeRecipients(ids []Identity, ui *PluginUI, action string, change func([]string) (next, changed []string, err error)) error {
	var sealedKey []byte
	var pass bool
	if err := v.View(func(tx *Tx) error {
		var err error
		if sealedKey, err = tx.rd.Get(bucketMeta, metaDataKey); err != nil {
			return err
		}
		pass, err = tx.passphraseLocked()
		return err
	}); err != nil {
		return err
	}
	if pass {
		return ErrPassphraseVault
	}
	dataKey, err := v.decryptDataKey(sealedKey, ids)
	if err != nil {
		return err
	}
	defer clear(dataKey)
	return v.Update(func(tx *Tx) error {
		if pass, err := tx.passphraseLocked(); err != nil || pass {
			return cmp.Or(err, ErrPassphraseVault)
		}
		s, err := tx.Settings()
		if err != nil {
			return err
		}
		if len(s.Recipients) == 0 {
			return ErrRecipientsUnknown
		}
		next, changed, err := change(s.Recipients)
		if err != nil {
			return err
		}
		recipients := make([]Recipient, 0, len(next))
		for _, n := range next {
			r, err := ParseRecipient(n, ui)
			if err != nil {
				return fmt.Errorf("recipient %s: %w", n, err)
			}
			recipients = append(recipients, r)
		}
		sealed, err := encryptDataKey(dataKey, recipients)
		if err != nil {
			return err
		}
		if err := tx.w.Put(bucketMeta, metaDataKey, sealed); err != nil {
			return err
		}
		s.Recipients = next
		if err := tx.putJSON(bucketSettings, []byte(settingsKey), s); err != nil {
			return err
		}
		// Recipients are public: the entry names them.
		return tx.Audit(action, "", fmt.Sprintf("%s; %d recipient(s) now", strings.Join(changed, ", "), len(next)))
	})
}

// decryptDataKey decrypts the data key sealed in meta with ids, and checks
// it is the key this Vault was opened with.
func (v *Vault) decryptDataKey(sealedKey []byte, ids []Identity) ([]byte, error) {
	dataKey, err := openDataKey(sealedKey, ids)
	if err != nil {
		return nil, err
	}
	k, err := deriveKeys(dataKey)
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare(k.check, v.keys().check) != 1 {
		return nil, ErrRekeyed
	}
	return dataKey, nil
}

// passphraseLocked reports whether the data key is encrypted to a
// passphrase: its age header has a scrypt stanza.
func (tx *Tx) passphraseLocked() (bool, error) {
	sealed, err := tx.rd.Get(bucketMeta, metaDataKey)
	if err != nil {
		return false, err
	}
	types, err := stanzaTypes(sealed)
	if err != nil {
		return false, err
	}
	return slices.Contains(types, "scrypt"), nil
}

// stanzaTypes lists the types of an age file's recipient stanzas.
func stanzaTypes(ageFile []byte) ([]string, error) {
	hdr, err := age.ExtractHeader(bytes.NewReader(ageFile))
	if err != nil {
		return nil, fmt.Errorf("read the data key's age header: %w", ErrCorrupt)
	}
	var types []string
	sc := bufio.NewScanner(bytes.NewReader(hdr))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "-> "); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				types = append(types, f[0])
			}
		}
	}
	return types, nil
}

// numbered names the i'th of n recipients in err, when there are several.
func numbered(i, n int, err error) error {
	if n == 1 {
		return err
	}
	return fmt.Errorf("recipient %d of %d: %w", i+1, n, err)
}

// canonicalRecipient parses s and returns the form two spellings of one
// recipient share: age's own encoding for native recipients, an SSH key's
// type and key without its comment, a plugin recipient lower-cased.
func canonicalRecipient(s string, ui *PluginUI) (string, error) {
	// What fails to parse is not quoted: it may be a secret pasted by
	// mistake.
	if strings.HasPrefix(strings.ToUpper(s), "AGE-SECRET-KEY-") || strings.HasPrefix(s, "AGE-PLUGIN-") || strings.Contains(s, "PRIVATE KEY") {
		return "", errors.New("that is a secret identity, not a recipient: give its public key (age1..., ssh-...), and keep the identity private")
	}
	r, err := ParseRecipient(s, ui)
	if err != nil {
		return "", fmt.Errorf("not a valid recipient: %w", err)
	}
	switch r := r.(type) {
	case *age.X25519Recipient:
		return r.String(), nil
	case *age.HybridRecipient:
		return r.String(), nil
	case *agessh.Ed25519Recipient, *agessh.RSARecipient:
		f := strings.Fields(s)
		return f[0] + " " + f[1], nil
	case *plugin.Recipient:
		return strings.ToLower(strings.TrimSpace(s)), nil
	}
	return strings.TrimSpace(s), nil
}

// sameRecipient reports whether the recipient stored as stored is the
// one whose canonical form is c.
func sameRecipient(stored, c string, ui *PluginUI) bool {
	sc, err := canonicalRecipient(stored, ui)
	return err == nil && sc == c
}
