package vault

import "fmt"

// StandingGrant returns the grant of user userID to client clientID (both
// ids) if it still stands: the grant exists, and its user exists and is
// not disabled. Otherwise the error wraps [ErrNotFound]. It is what a
// token a client got for a user is checked against (token.CheckActive's
// Grant lookup), for `keymint token verify` and /introspect alike.
func (tx *Tx) StandingGrant(userID, clientID string) (*Grant, error) {
	g, err := tx.GrantFor(userID, clientID)
	if err != nil {
		return nil, err
	}
	u, err := tx.userByID(userID)
	if err != nil {
		return nil, err
	}
	if u == nil || u.Disabled {
		return nil, fmt.Errorf("user %s (removed or disabled): %w", userID, ErrNotFound)
	}
	return g, nil
}

// DerivedKey returns a 32-byte key for purpose, derived from the vault's
// index key: the same in every process that opens the vault, unknown to
// anyone who cannot, and kept by a rekey. The server seals its sign-in
// sessions and the state of an authorization request under such keys, so
// that every replica can open what another sealed.
func (v *Vault) DerivedKey(purpose string) []byte {
	return v.keys().mac("derived key", purpose)
}
