package vault

import (
	"errors"
	"fmt"
	"time"
)

// CreateClient stores a new OAuth client under c.Name with the given secret (only its
// HMAC is kept). It assigns c.ID and c.CreatedAt. A public client
// (c.Public) has no secret: secret must then be "". A permission group
// may be given by name or id; it is stored by id.
func (tx *Tx) CreateClient(c *Client, secret string) error {
	if c.Public && secret != "" {
		return fmt.Errorf("client %s: %w", c.Name, ErrPublicClient)
	}
	if err := tx.resolveClientGroup(c); err != nil {
		return err
	}
	return create(tx, c, secret)
}

// ErrPublicClient refuses a secret for a public client, which proves
// itself with PKCE alone.
var ErrPublicClient = errors.New("a public client has no secret; it proves itself with PKCE alone")

// ErrClientType refuses to turn a public client into a confidential one or
// back: the one has secrets that the other must not.
var ErrClientType = errors.New("a client cannot change between public and confidential; create a new client")

// Client returns the client with this id or name.
func (tx *Tx) Client(ref string) (*Client, error) { return get[Client](tx, ref) }

// EachClient calls fn for every client, in no order, without last use (see
// [Credential.LastUsedAt]): for a server loading the whole vault.
func (tx *Tx) EachClient(fn func(*Client) error) error { return each[Client](tx, fn) }

// Clients returns every client, ordered by name.
func (tx *Tx) Clients() ([]*Client, error) { return list[Client](tx) }

// SaveClient rewrites a client's fields other than its name, secrets and
// whether it is public. A permission group may be given by name or id.
func (tx *Tx) SaveClient(c *Client) error {
	if err := tx.resolveClientGroup(c); err != nil {
		return err
	}
	if err := update(tx, c); err != nil {
		return err
	}
	return tx.Audit("client.update", c.ID, c.Name)
}

// DeleteClients removes the named clients, or none if one is missing, with
// the grants users gave them and the refresh tokens issued under those.
func (tx *Tx) DeleteClients(refs ...string) ([]*Client, error) {
	removed, err := remove[Client](tx, refs)
	if err != nil {
		return nil, err
	}
	for _, c := range removed {
		if err := tx.dropGrantsOf(c.ID, "client "+c.Name+" removed"); err != nil {
			return nil, err
		}
	}
	return removed, nil
}

// RenameClient gives a client a new name.
func (tx *Tx) RenameClient(ref, newName string) (*Client, error) {
	return rename[Client](tx, ref, newName)
}

// RotateClient adds a new secret; the old ones keep working for grace.
func (tx *Tx) RotateClient(ref, secret string, grace time.Duration) (*Client, error) {
	return rotate[Client](tx, ref, secret, grace)
}

// ClientBySecret returns the client a secret belongs to if it may be used now
// ([Usable]): ErrNotFound for an unknown or retired secret, an
// [ExpiredError] for an expired client, a [DisabledError] for a disabled one.
func (tx *Tx) ClientBySecret(secret string) (*Client, error) { return authenticate[Client](tx, secret) }

// TouchClient sets a client's last_used_at to the transaction's time.
func (tx *Tx) TouchClient(id string) error { return touch[Client](tx, id) }
