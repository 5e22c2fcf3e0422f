package vault

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/keymint/keymint/apikey"
)

// Kind names a kind of credential.
type Kind string

// The credential kinds a vault holds.
const (
	KindKey    Kind = "key"
	KindClient Kind = "client"
)

func (k Kind) bucket() string {
	if k == KindClient {
		return bucketClients
	}
	return bucketKeys
}

func (k Kind) idPrefix() string {
	if k == KindClient {
		return "cl_"
	}
	return "key_"
}

// Limit is a usage limit as stored; package quota gives it meaning.
type Limit struct {
	Count  int64  `json:"count"`
	Period string `json:"period"`
}

// SecretHash is the HMAC of a secret, never the secret itself. A secret
// being rotated out carries the end of its grace window.
type SecretHash struct {
	MAC       []byte     `json:"mac"`
	CreatedAt time.Time  `json:"created_at"`
	RetiresAt *time.Time `json:"retires_at,omitempty"`
	// Legacy marks a secret brought in by an import that is not in
	// keymint's format (see [Tx.ImportKey]): it may be low-entropy, so
	// operators are shown it should be rotated, and a server throttles
	// failures against its client.
	Legacy bool `json:"legacy,omitempty"`
}

// Credential is what API keys and OAuth clients have in common.
type Credential struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Scopes    []string   `json:"scopes"`
	Limits    []Limit    `json:"limits,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// LastUsedAt is kept with the usage data, not in the record (see
	// touch); it is filled in by Key, Client, Keys and Clients, and left
	// nil by the reads that serve hot paths (KeyBySecret, ClientBySecret,
	// Credential, EachKey, EachClient).
	LastUsedAt *time.Time   `json:"-"`
	Secrets    []SecretHash `json:"secrets"`
	// Disabled marks a credential its operator turned off (`keymint key
	// update --disable`): [Usable] refuses it, as it does an expired one,
	// until it is enabled again.
	Disabled bool `json:"disabled,omitempty"`
}

func (c *Credential) credential() *Credential { return c }

// LegacySecret reports whether any of c's secrets still live at now is a
// legacy one ([SecretHash.Legacy]): after a rotation, until its grace ends.
func (c *Credential) LegacySecret(now time.Time) bool {
	for _, s := range c.Secrets {
		if s.Legacy && (s.RetiresAt == nil || now.Before(*s.RetiresAt)) {
			return true
		}
	}
	return false
}

// Expired reports whether the credential has expired at now.
func (c *Credential) Expired(now time.Time) bool {
	return c.ExpiresAt != nil && !now.Before(*c.ExpiresAt)
}

// Key is an API key.
type Key struct {
	Credential
	// Description says what the key is for, for the people who manage it.
	Description string `json:"description,omitempty"`
}

// Client is an OAuth 2.0 client. Its ID is the public client_id.
type Client struct {
	Credential
	GrantTypes   []string      `json:"grant_types"`
	RedirectURIs []string      `json:"redirect_uris,omitempty"`
	Audience     []string      `json:"audience,omitempty"`
	TokenTTL     time.Duration `json:"token_ttl"`
	Description  string        `json:"description,omitempty"`
	URL          string        `json:"url,omitempty"`
	PolicyURL    string        `json:"policy_url,omitempty"`
	TOSURL       string        `json:"tos_url,omitempty"`
	// Public marks a client that cannot keep a secret (a single-page or
	// native app): it has no secrets and proves itself with PKCE alone.
	// Fixed at creation.
	Public bool `json:"public,omitempty"`
	// PermissionGroup is the id of the [PermissionGroup] whose scopes are
	// the ones the client may ask for, instead of Scopes; empty for none.
	PermissionGroup string `json:"permission_group,omitempty"`
}

// record is satisfied by *Key and *Client; T is the struct behind it.
type record[T any] interface {
	*T
	credential() *Credential
}

func kindOf[T any]() Kind {
	if _, ok := any(new(T)).(*Client); ok {
		return KindClient
	}
	return KindKey
}

var (
	// Compiled on first use, not at start-up: every command pays for
	// package initialisation, and most never validate a name.
	namePattern = lazyRegexp(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	// Every kind of id, so that no name of any kind can pass for one.
	idPattern = lazyRegexp(`^(key|cl|usr|pg|grt|rtf)_[0-9A-Za-z]{16,}$`)
	// The ids an imported client may keep (a 40-hex client_id, say): 8 to
	// 128 unreserved URI characters. One that matches idPattern must be a
	// client's (cl_); see isClientID.
	importedIDPattern = lazyRegexp(`^[A-Za-z0-9._~-]{8,128}$`)
)

// isClientID reports whether id may be a client's: keymint's own (cl_) or
// one kept from an import.
func isClientID(id string) bool {
	if idPattern().MatchString(id) {
		return strings.HasPrefix(id, KindClient.idPrefix())
	}
	return importedIDPattern().MatchString(id)
}

// ValidateName accepts 1 to 64 letters, digits, '.', '_' and '-', starting
// with a letter or digit, that cannot be mistaken for an id, and that holds
// nothing shaped like a secret or a JWT ([apikey.FindSecrets]): a name is
// shown in lists, logs and the audit log, so a secret pasted as one would
// be too. Its error quotes such a name masked.
func ValidateName(name string) error {
	if len(apikey.FindSecrets(name)) > 0 {
		return fmt.Errorf("%w %q: it looks like a secret or a token; a name is shown in lists and logs", ErrInvalidName, apikey.Mask(name))
	}
	if !namePattern().MatchString(name) {
		return fmt.Errorf("%w %q: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", ErrInvalidName, name)
	}
	if idPattern().MatchString(name) {
		return fmt.Errorf("%w %q: it looks like an id", ErrInvalidName, name)
	}
	return nil
}

func namePurpose(k Kind) string { return "name:" + string(k) }

const secretPurpose = "secret"

func newID(k Kind) (string, error) {
	if k == KindClient {
		return newRandomID(k.idPrefix()) // a client_id is public, but should not be guessable
	}
	s, err := apikey.RandomString(16)
	if err != nil {
		return "", err
	}
	return k.idPrefix() + s, nil
}

// newRandomID returns prefix and 22 base62 characters (131 bits): the ids of
// clients and of everything format 3 added, which travel in tokens (a
// user's is the sub of every token issued to them) and must not be
// guessable.
func newRandomID(prefix string) (string, error) {
	s, err := apikey.RandomString(22)
	if err != nil {
		return "", err
	}
	return prefix + s, nil
}

func lazyRegexp(expr string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}
