package main

import "github.com/keymint/keymint/vault"

// countUse counts one use of a credential inside the caller's transaction
// and fails when a limit is exhausted.
func (a *app) countUse(tx *vault.Tx, c *vault.Credential) error {
	_, err := consumeUse(tx, c)
	return err
}
