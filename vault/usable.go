package vault

import (
	"crypto/hmac"
	"errors"
	"fmt"
	"time"
)

// Why a presented secret is refused by [Usable]. Neither quotes the secret.
var (
	// ErrSecretRetired means the secret was one of the credential's, but
	// its grace after a rotation has passed.
	ErrSecretRetired = errors.New("secret is retired: its grace has passed")
	// ErrWrongSecret means the secret is not one of the credential's.
	ErrWrongSecret = errors.New("secret is not the credential's")
)

// Usable is the one decision whether credential c, of kind kind, may be
// used at now, short of its limits (which package quota counts, after
// this). The CLI, the server and the vault itself all ask it:
//
//   - c nil: there is no such credential, never was or removed:
//     [ErrNotFound];
//   - mac, the HMAC of a presented secret ([Vault.MAC]), must be one of
//     c's secrets that is live at now, that is without a retirement or
//     before it: [ErrSecretRetired] for one whose grace has passed,
//     [ErrWrongSecret] for one that is not c's. Every secret of c is
//     compared, in constant time. A nil mac means the credential was named
//     rather than authenticated, by the vault's operator (`token issue
//     --client`, a rotation), and no secret is checked; an empty non-nil
//     mac matches nothing;
//   - c must not have expired: an [ExpiredError] (wrapping [ErrExpired]);
//   - c must not be disabled ([Credential.Disabled]): a [DisabledError]
//     (wrapping [ErrDisabled]).
//
// The secret is checked before expiry and the disabled flag, so that only
// the holder of a right secret learns that its credential has expired or
// is disabled.
func Usable(kind Kind, c *Credential, mac []byte, now time.Time) error {
	if c == nil {
		return ErrNotFound
	}
	if mac != nil {
		live, known := false, false
		for _, s := range c.Secrets {
			eq := hmac.Equal(s.MAC, mac)
			known = known || eq
			live = live || (eq && (s.RetiresAt == nil || now.Before(*s.RetiresAt)))
		}
		switch {
		case !known:
			return ErrWrongSecret
		case !live:
			return ErrSecretRetired
		}
	}
	if c.Expired(now) {
		return &ExpiredError{Kind: kind, ID: c.ID, Name: c.Name, ExpiresAt: c.ExpiresAt.UTC()}
	}
	if c.Disabled {
		return &DisabledError{Kind: kind, ID: c.ID, Name: c.Name}
	}
	return nil
}

// DisabledError names the credential that is disabled.
type DisabledError struct {
	Kind     Kind
	ID, Name string
}

func (e *DisabledError) Error() string {
	return fmt.Sprintf("%s %s is disabled", e.Kind, e.Name)
}

func (e *DisabledError) Unwrap() error { return ErrDisabled }

// SecretMatches reports whether mac is one of c's live secrets at now,
// comparing in constant time: [Usable]'s secret check alone, for work
// that must cost what a real check costs (a decoy compared for an unknown
// client, say).
func SecretMatches(c *Credential, mac []byte, now time.Time) bool {
	err := Usable("", &Credential{Secrets: c.Secrets}, mac, now)
	return err == nil
}
