package vault

import "time"

// CreateClient stores a new OAuth client under c.Name with the given secret (only its
// HMAC is kept). It assigns c.ID and c.CreatedAt.
func (tx *Tx) CreateClient(c *Client, secret string) error { return create(tx, c, secret) }

// Client returns the client with this id or name.
func (tx *Tx) Client(ref string) (*Client, error) { return get[Client](tx, ref) }

// EachClient calls fn for every client, in no order, without last use (see
// [Credential.LastUsedAt]): for a server loading the whole vault.
func (tx *Tx) EachClient(fn func(*Client) error) error { return each[Client](tx, fn) }

// Clients returns every client, ordered by name.
func (tx *Tx) Clients() ([]*Client, error) { return list[Client](tx) }

// SaveClient rewrites a client's fields other than its name and secrets.
func (tx *Tx) SaveClient(c *Client) error {
	if err := update(tx, c); err != nil {
		return err
	}
	return tx.Audit("client.update", c.ID, c.Name)
}

// DeleteClients removes the named clients, or none if one is missing.
func (tx *Tx) DeleteClients(refs ...string) ([]*Client, error) { return remove[Client](tx, refs) }

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
// [ExpiredError] for an expired client.
func (tx *Tx) ClientBySecret(secret string) (*Client, error) { return authenticate[Client](tx, secret) }

// TouchClient sets a client's last_used_at to the transaction's time.
func (tx *Tx) TouchClient(id string) error { return touch[Client](tx, id) }
