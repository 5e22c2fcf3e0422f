package vault

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Updating a credential in place: `keymint key update` and `keymint client
// update`. An update names the fields it sets, each a pointer that is nil
// to leave that field as it is; it returns what changed, field by field.
// The caller checks the syntax of what it sets (scopes by
// token.ValidScope, redirect URIs by token.CheckRedirectURI, a token TTL
// within its bounds), as for a new credential; the vault checks what
// depends on the stored record.

// CredentialUpdate is what keys and clients both may have changed.
type CredentialUpdate struct {
	// Scopes replaces the scopes.
	Scopes *[]string
	// Expiry sets a new expiry: a time, or nil for none. An expired
	// credential given a later one (or none) may be used again.
	Expiry **time.Time
	// Disabled disables (true) or enables (false) the credential; see
	// [Usable].
	Disabled *bool
}

// KeyUpdate is the change [Tx.UpdateKey] makes.
type KeyUpdate struct {
	CredentialUpdate
	// Description replaces what the key is for.
	Description *string
}

// ClientUpdate is the change [Tx.UpdateClient] makes.
type ClientUpdate struct {
	CredentialUpdate
	// TokenTTL replaces the lifetime of the client's access tokens, which
	// must be positive.
	TokenTTL *time.Duration
	// RedirectURIs replaces the redirect URIs: an authorization_code client
	// keeps at least one, and only such a client may have any.
	RedirectURIs *[]string
	// Audience replaces the audience of the client's tokens.
	Audience *[]string
	// Description replaces what the client is for.
	Description *string
}

// FieldChange is one field an update changed, with its value before and after
// as shown to people ("never" for no expiry, "" for no scopes).
type FieldChange struct {
	Field string `json:"field"`
	From  string `json:"from"`
	To    string `json:"to"`
}

func (c FieldChange) String() string {
	if c.Field == "disabled" || c.Field == "enabled" {
		return c.Field
	}
	return fmt.Sprintf("%s %s -> %s", c.Field, orNone(c.From), orNone(c.To))
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// ErrInvalidUpdate refuses an update that would leave a record
// inconsistent.
var ErrInvalidUpdate = errors.New("invalid update")

// grantAuthorizationCode is token.GrantAuthorizationCode, which the vault
// cannot import: the one grant type that uses redirect URIs.
const grantAuthorizationCode = "authorization_code"

// UpdateKey changes the key ref names as u says, and returns it with what
// changed. An update that changes nothing writes nothing and returns no
// changes; otherwise it advances the generation (so a server picks it up)
// and appends one audit entry, key.update, naming the fields changed.
func (tx *Tx) UpdateKey(ref string, u KeyUpdate) (*Key, []FieldChange, error) {
	k, err := tx.Key(ref)
	if err != nil {
		return nil, nil, err
	}
	changes := u.apply(&k.Credential)
	if u.Description != nil && *u.Description != k.Description {
		changes = append(changes, FieldChange{"description", k.Description, *u.Description})
		k.Description = *u.Description
	}
	if err := tx.commitUpdate(KindKey, k, &k.Credential, changes); err != nil {
		return nil, nil, err
	}
	return k, changes, nil
}

// UpdateClient changes the client ref names as u says, and returns it with
// what changed, as [Tx.UpdateKey] does (audit action client.update).
func (tx *Tx) UpdateClient(ref string, u ClientUpdate) (*Client, []FieldChange, error) {
	c, err := tx.Client(ref)
	if err != nil {
		return nil, nil, err
	}
	if u.Scopes != nil && c.PermissionGroup != "" && len(*u.Scopes) > 0 {
		return nil, nil, fmt.Errorf("client %s: %w: it asks for the scopes of its permission group, not scopes of its own", c.Name, ErrInvalidUpdate)
	}
	if u.TokenTTL != nil && *u.TokenTTL <= 0 {
		return nil, nil, fmt.Errorf("client %s: %w: a token TTL must be positive", c.Name, ErrInvalidUpdate)
	}
	if u.RedirectURIs != nil {
		code := slices.Contains(c.GrantTypes, grantAuthorizationCode)
		switch {
		case code && len(*u.RedirectURIs) == 0:
			return nil, nil, fmt.Errorf("client %s: %w: an %s client keeps at least one redirect URI", c.Name, ErrInvalidUpdate, grantAuthorizationCode)
		case !code && len(*u.RedirectURIs) > 0:
			return nil, nil, fmt.Errorf("client %s: %w: redirect URIs are only for %s clients", c.Name, ErrInvalidUpdate, grantAuthorizationCode)
		}
	}
	changes := u.apply(&c.Credential)
	if u.TokenTTL != nil && *u.TokenTTL != c.TokenTTL {
		changes = append(changes, FieldChange{"token_ttl", c.TokenTTL.String(), u.TokenTTL.String()})
		c.TokenTTL = *u.TokenTTL
	}
	if u.RedirectURIs != nil && !slices.Equal(*u.RedirectURIs, c.RedirectURIs) {
		changes = append(changes, FieldChange{"redirect_uris", strings.Join(c.RedirectURIs, " "), strings.Join(*u.RedirectURIs, " ")})
		c.RedirectURIs = slices.Clone(*u.RedirectURIs)
	}
	if u.Audience != nil && !slices.Equal(*u.Audience, c.Audience) {
		changes = append(changes, FieldChange{"audience", strings.Join(c.Audience, " "), strings.Join(*u.Audience, " ")})
		c.Audience = slices.Clone(*u.Audience)
	}
	if u.Description != nil && *u.Description != c.Description {
		changes = append(changes, FieldChange{"description", c.Description, *u.Description})
		c.Description = *u.Description
	}
	if err := tx.commitUpdate(KindClient, c, &c.Credential, changes); err != nil {
		return nil, nil, err
	}
	return c, changes, nil
}

// apply makes u's changes to c and says what changed, in a fixed order.
func (u CredentialUpdate) apply(c *Credential) []FieldChange {
	var changes []FieldChange
	if u.Scopes != nil && !slices.Equal(*u.Scopes, c.Scopes) {
		changes = append(changes, FieldChange{"scopes", strings.Join(c.Scopes, " "), strings.Join(*u.Scopes, " ")})
		c.Scopes = slices.Clone(*u.Scopes)
	}
	if u.Expiry != nil && !sameTime(*u.Expiry, c.ExpiresAt) {
		changes = append(changes, FieldChange{"expires", expiryString(c.ExpiresAt), expiryString(*u.Expiry)})
		if t := *u.Expiry; t != nil {
			utc := t.UTC()
			c.ExpiresAt = &utc
		} else {
			c.ExpiresAt = nil
		}
	}
	if u.Disabled != nil && *u.Disabled != c.Disabled {
		field := "enabled"
		if *u.Disabled {
			field = "disabled"
		}
		changes = append(changes, FieldChange{Field: field, From: fmt.Sprint(c.Disabled), To: fmt.Sprint(*u.Disabled)})
		c.Disabled = *u.Disabled
	}
	return changes
}

// commitUpdate writes r when changes is not empty, with its audit entry.
func (tx *Tx) commitUpdate(kind Kind, r any, c *Credential, changes []FieldChange) error {
	if len(changes) == 0 {
		return nil
	}
	var err error
	switch r := r.(type) {
	case *Key:
		err = update(tx, r)
	case *Client:
		err = update(tx, r)
	}
	if err != nil {
		return err
	}
	fields := make([]string, len(changes))
	for i, ch := range changes {
		fields[i] = ch.Field
	}
	return tx.Audit(string(kind)+".update", c.ID, c.Name+": "+strings.Join(fields, ", "))
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

func expiryString(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}
