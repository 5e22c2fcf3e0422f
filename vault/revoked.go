package vault

import (
	"errors"
	"time"
)

// Revocation records a revoked access token until it would have expired.
type Revocation struct {
	JTI       string    `json:"jti"`
	ClientID  string    `json:"client_id"`
	ExpiresAt time.Time `json:"expires_at"`
	RevokedAt time.Time `json:"revoked_at"`
}

// Revoke records that the token with this jti is revoked. Revocations whose
// tokens have expired are dropped on the way, a few each time (expiry.go),
// so the bucket stays small and no revocation costs a pass over it.
func (tx *Tx) Revoke(r Revocation) error {
	if r.JTI == "" {
		return errors.New("revoke a token: it has no jti")
	}
	if err := tx.pruneExpired(queueRevocations); err != nil {
		return err
	}
	if ok, err := tx.getJSON(bucketRevoked, []byte(r.JTI), &Revocation{}); err != nil || ok {
		return err // already revoked
	}
	r.RevokedAt = tx.now
	if err := tx.putJSON(bucketRevoked, []byte(r.JTI), r); err != nil {
		return err
	}
	if err := tx.expiryPut(queueRevocations, expiryRevocation, []byte(r.JTI), r.ExpiresAt); err != nil {
		return err
	}
	return tx.Audit("token.revoke", r.ClientID, r.JTI)
}

// Revoked reports whether the token with this jti was revoked.
func (tx *Tx) Revoked(jti string) (bool, error) {
	return tx.getJSON(bucketRevoked, []byte(jti), &Revocation{})
}

// Revocations returns every revocation still in force at the tx's time.
func (tx *Tx) Revocations() ([]Revocation, error) {
	var out []Revocation
	err := forEachJSON(tx, bucketRevoked, func(_ []byte, r *Revocation) error {
		if tx.now.Before(r.ExpiresAt) {
			out = append(out, *r)
		}
		return nil
	})
	return out, err
}
