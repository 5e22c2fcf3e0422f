package vault

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/keymint/keymint/apikey"
)

// Refresh tokens.
//
// A refresh token is a keymint-format secret (apikey) whose prefix is the
// vault's key prefix followed by RefreshTokenMark ("kmrt_..."), so that
// `keymint scan` finds one pasted where it should not be; it is stored only
// as its HMAC under the index key (purpose "refresh"). Tokens rotate: each
// use gives a new one and retires the old, and all the tokens of one
// sign-in form a family. An old token presented again means two parties
// hold the family (RFC 9700 section 4.14.2), so the whole family is
// revoked.
//
// Like codes, refresh tokens and families are usage data: their writes do
// not advance the generation, and expired tokens are removed a few per
// write (expiry.go); a rotated token is kept until its own expiry so that
// its reuse is recognised. The families bucket holds, with the family id
// (or the grant id) before a 0 byte as shard key:
//
//	rtf_... -> RefreshFamily
//	rtf_..., 0, HMAC of a token -> {} (the family's tokens)
//	grt_..., 0, rtf_... -> {} (the grant's families)
//
// so that a family's tokens, and a grant's families, are each one range.

const refreshPurpose = "refresh"

// RefreshTokenMark follows the vault's key prefix in the prefix of refresh
// tokens, as apikey.ClientSecretMark does for client secrets: "kmrt".
const RefreshTokenMark = "rt"

// RefreshTokenPrefix is the prefix of the vault's refresh tokens.
func (s Settings) RefreshTokenPrefix() string {
	p := s.KeyPrefix
	if p == "" {
		p = apikey.DefaultKeyPrefix
	}
	return p + RefreshTokenMark
}

// RefreshToken is what a refresh token stands for, stored under its HMAC.
type RefreshToken struct {
	FamilyID string   `json:"family_id"`
	GrantID  string   `json:"grant_id"`
	ClientID string   `json:"client_id"`
	UserID   string   `json:"user_id"`
	Scopes   []string `json:"scopes"`
	// AuthTime is when the user signed in, carried through rotations for
	// the id_token's auth_time.
	AuthTime  time.Time `json:"auth_time"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// RotatedAt is when the token was exchanged for the next one; nil
	// while it is the family's current token.
	RotatedAt *time.Time `json:"rotated_at,omitempty"`
}

// RefreshFamily is the state of the tokens of one sign-in.
type RefreshFamily struct {
	ID        string     `json:"id"`
	GrantID   string     `json:"grant_id"`
	ClientID  string     `json:"client_id"`
	UserID    string     `json:"user_id"`
	CreatedAt time.Time  `json:"created_at"`
	Revoked   bool       `json:"revoked,omitempty"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// ErrRefreshInvalid is a refresh token that cannot be used: unknown,
// malformed, expired, already rotated (see [RefreshReusedError], which
// wraps it), of a revoked family, or issued under a grant that no longer
// stands (revoked, its user removed or disabled, its client removed).
var ErrRefreshInvalid = errors.New("refresh token is invalid, expired or revoked")

// RefreshReusedError reports a rotated refresh token presented again. Its
// whole family has been revoked by the transaction that returned it,
// which commits (see [Vault.Update]).
type RefreshReusedError struct {
	FamilyID, GrantID, ClientID, UserID string
	RotatedAt                           time.Time
}

func (e *RefreshReusedError) Error() string {
	return fmt.Sprintf("refresh token of client %s was already exchanged at %s: its family %s is revoked; the user must sign in again",
		e.ClientID, e.RotatedAt.UTC().Format(time.RFC3339), e.FamilyID)
}

func (e *RefreshReusedError) Unwrap() error { return ErrRefreshInvalid }

func familyMemberKey(familyID string, mac []byte) []byte {
	return append([]byte(familyID+"\x00"), mac...)
}

// checkNewRefresh checks a refresh token about to be stored: keymint's
// format with the vault's refresh token prefix. Its errors never quote it.
func (tx *Tx) checkNewRefresh(token string) error {
	prefix, err := apikey.Parse(token)
	if err != nil {
		return fmt.Errorf("new refresh token: %w", err)
	}
	s, err := tx.Settings()
	if err != nil {
		return err
	}
	if want := s.RefreshTokenPrefix(); prefix != want {
		return fmt.Errorf("new refresh token: its prefix is %q, the vault's refresh tokens start with %q", prefix, want)
	}
	return nil
}

// CreateRefreshToken stores token (as its HMAC) as the first of a new
// family, for the grant rt.GrantID. It assigns rt.FamilyID and
// rt.CreatedAt, and fills rt.UserID and rt.ClientID from the grant (given,
// they must agree). rt must expire in the future.
func (tx *Tx) CreateRefreshToken(token string, rt *RefreshToken) error {
	if err := tx.checkNewRefresh(token); err != nil {
		return err
	}
	switch {
	case rt.FamilyID != "" || rt.RotatedAt != nil:
		return errors.New("new refresh token: a new family's first token is neither in a family nor rotated")
	case !rt.ExpiresAt.After(tx.now):
		return errors.New("new refresh token: it expires before it is made")
	}
	g, err := tx.grantByID(rt.GrantID)
	if err != nil {
		return err
	}
	if g == nil {
		return fmt.Errorf("new refresh token: grant %q: %w", rt.GrantID, ErrNotFound)
	}
	if rt.UserID == "" && rt.ClientID == "" {
		rt.UserID, rt.ClientID = g.UserID, g.ClientID
	}
	if err := tx.grantStands(rt.GrantID, rt.UserID, rt.ClientID); err != nil {
		return fmt.Errorf("new refresh token: %w", err)
	}
	if err := tx.pruneExpired(queueTokens); err != nil {
		return err
	}
	id, err := newRandomID("rtf_")
	if err != nil {
		return err
	}
	fam := RefreshFamily{ID: id, GrantID: rt.GrantID, ClientID: rt.ClientID, UserID: rt.UserID, CreatedAt: tx.now}
	if err := tx.putJSON(bucketFamilies, []byte(id), &fam); err != nil {
		return err
	}
	if err := tx.putJSON(bucketFamilies, grantIndexKey(rt.GrantID, id), struct{}{}); err != nil {
		return err
	}
	rt.FamilyID, rt.CreatedAt, rt.Scopes = id, tx.now, slices.Clone(rt.Scopes)
	return tx.putRefresh(token, rt)
}

// putRefresh stores a new token of an existing family.
func (tx *Tx) putRefresh(token string, rt *RefreshToken) error {
	mac := tx.k.mac(refreshPurpose, token)
	taken, err := tx.exists(bucketRefresh, mac)
	if err != nil {
		return err
	}
	if taken {
		return errors.New("new refresh token: it is already in use")
	}
	if err := tx.putJSON(bucketRefresh, mac, rt); err != nil {
		return err
	}
	if err := tx.putJSON(bucketFamilies, familyMemberKey(rt.FamilyID, mac), struct{}{}); err != nil {
		return err
	}
	return tx.expiryPut(queueTokens, expiryRefresh, mac, rt.ExpiresAt)
}

// presented finds a presented refresh token and its family: unknown,
// malformed, expired, or of a missing or revoked family is
// ErrRefreshInvalid. Expiry is checked before rotation, so that the
// answer does not depend on whether an expired token was removed yet.
func (tx *Tx) presented(token string) ([]byte, *RefreshToken, *RefreshFamily, error) {
	if _, err := apikey.Parse(token); err != nil {
		return nil, nil, nil, ErrRefreshInvalid
	}
	mac := tx.k.mac(refreshPurpose, token)
	var rt RefreshToken
	ok, err := tx.getJSON(bucketRefresh, mac, &rt)
	if err != nil {
		return nil, nil, nil, err
	}
	if !ok || !tx.now.Before(rt.ExpiresAt) {
		return nil, nil, nil, ErrRefreshInvalid
	}
	var fam RefreshFamily
	ok, err = tx.getJSON(bucketFamilies, []byte(rt.FamilyID), &fam)
	if err != nil {
		return nil, nil, nil, err
	}
	if !ok || fam.Revoked {
		return nil, nil, nil, ErrRefreshInvalid
	}
	return mac, &rt, &fam, nil
}

// stands checks that what rt was issued under still stands.
func (tx *Tx) stands(rt *RefreshToken) error {
	if err := tx.grantStands(rt.GrantID, rt.UserID, rt.ClientID); err != nil {
		if errors.Is(err, ErrNotFound) {
			return ErrRefreshInvalid
		}
		return err
	}
	return nil
}

// RefreshToken returns what token stands for if it may be exchanged now:
// the current token of a live family under a grant that stands. Anything
// else is ErrRefreshInvalid; a rotated token is refused without revoking
// anything (this is a read: only [Tx.RotateRefreshToken] acts on a reuse).
func (tx *Tx) RefreshToken(token string) (*RefreshToken, error) {
	_, rt, _, err := tx.presented(token)
	if err != nil {
		return nil, err
	}
	if rt.RotatedAt != nil {
		return nil, ErrRefreshInvalid
	}
	return rt, tx.stands(rt)
}

// RotateRefreshToken exchanges the current token old for newToken, in one
// step: old is marked rotated and newToken joins its family, with the same
// grant, scopes and sign-in time, and the lifetime old was given (so a
// family used at least that often lives on). It returns newToken's record.
//
// An old token that is unknown, expired, of a revoked family or under a
// grant that no longer stands is ErrRefreshInvalid. An old token already
// rotated is a [*RefreshReusedError]: its family is revoked in this
// transaction, which then commits whatever the caller returns.
func (tx *Tx) RotateRefreshToken(old, newToken string) (*RefreshToken, error) {
	if err := tx.checkNewRefresh(newToken); err != nil {
		return nil, err
	}
	if err := tx.pruneExpired(queueTokens); err != nil {
		return nil, err
	}
	mac, rt, fam, err := tx.presented(old)
	if err != nil {
		return nil, err
	}
	if rt.RotatedAt != nil {
		return nil, tx.refreshReused(rt, fam)
	}
	if err := tx.stands(rt); err != nil {
		return nil, err
	}
	now := tx.now
	next := *rt
	next.CreatedAt, next.ExpiresAt = now, now.Add(rt.ExpiresAt.Sub(rt.CreatedAt))
	rt.RotatedAt = &now
	if err := tx.putJSON(bucketRefresh, mac, rt); err != nil {
		return nil, err
	}
	if err := tx.putRefresh(newToken, &next); err != nil {
		return nil, err
	}
	return &next, nil
}

func (tx *Tx) refreshReused(rt *RefreshToken, fam *RefreshFamily) error {
	if err := tx.revokeFamily(fam.ID, "token reused"); err != nil {
		return err
	}
	return tx.keep(&RefreshReusedError{
		FamilyID: fam.ID, GrantID: fam.GrantID, ClientID: fam.ClientID, UserID: fam.UserID, RotatedAt: *rt.RotatedAt,
	})
}

// RefreshFamily returns the family with this id.
func (tx *Tx) RefreshFamily(id string) (*RefreshFamily, error) {
	var fam RefreshFamily
	ok, err := tx.getJSON(bucketFamilies, []byte(id), &fam)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("refresh family %q: %w", id, ErrNotFound)
	}
	return &fam, nil
}

// RevokeRefreshFamily revokes every token of a family: a signed-out
// session, or a refresh token revoked at /revoke (RFC 7009). Its tokens
// are removed at their expiry. Revoking a revoked family does nothing.
func (tx *Tx) RevokeRefreshFamily(id string) error {
	if _, err := tx.RefreshFamily(id); err != nil {
		return err
	}
	return tx.revokeFamily(id, "revoked")
}

// revokeFamily marks a family revoked and logs why; a family that is gone
// (with its grant) or already revoked is left as it is.
func (tx *Tx) revokeFamily(id, why string) error {
	var fam RefreshFamily
	ok, err := tx.getJSON(bucketFamilies, []byte(id), &fam)
	if err != nil || !ok || fam.Revoked {
		return err
	}
	now := tx.now
	fam.Revoked, fam.RevokedAt = true, &now
	if err := tx.putJSON(bucketFamilies, []byte(id), &fam); err != nil {
		return err
	}
	return tx.Audit("refresh.revoke", fam.ClientID, fmt.Sprintf("family %s of grant %s: %s", fam.ID, fam.GrantID, why))
}

// dropRefreshToken removes an expired token (its expiry entry is gone
// already), and its family once it has no token left.
func (tx *Tx) dropRefreshToken(mac []byte, rt *RefreshToken) error {
	if err := tx.delete(bucketRefresh, mac); err != nil {
		return err
	}
	member := familyMemberKey(rt.FamilyID, mac)
	if err := tx.delete(bucketFamilies, member); err != nil {
		return err
	}
	prefix := familyMemberKey(rt.FamilyID, nil)
	left := false
	err := tx.rangeShard(bucketFamilies, prefix, prefixEnd(prefix), func([]byte, []byte) error {
		left = true
		return errStopRange
	})
	if err != nil && !errors.Is(err, errStopRange) {
		return err
	}
	if left {
		return nil
	}
	if err := tx.delete(bucketFamilies, []byte(rt.FamilyID)); err != nil {
		return err
	}
	return tx.delete(bucketFamilies, grantIndexKey(rt.GrantID, rt.FamilyID))
}

// dropGrantFamilies removes the families of a grant being removed, with
// their tokens and the tokens' expiry entries.
func (tx *Tx) dropGrantFamilies(grantID string) error {
	families, err := tx.rangeKeys(bucketFamilies, grantIndexKey(grantID, ""))
	if err != nil {
		return err
	}
	for _, link := range families {
		famID := string(link[len(grantID)+1:])
		members, err := tx.rangeKeys(bucketFamilies, familyMemberKey(famID, nil))
		if err != nil {
			return err
		}
		for _, member := range members {
			mac := member[len(famID)+1:]
			var rt RefreshToken
			ok, err := tx.getJSON(bucketRefresh, mac, &rt)
			if err != nil {
				return err
			}
			if ok {
				if err := tx.expiryDelete(queueTokens, expiryRefresh, mac, rt.ExpiresAt); err != nil {
					return err
				}
				if err := tx.delete(bucketRefresh, mac); err != nil {
					return err
				}
			}
			if err := tx.delete(bucketFamilies, member); err != nil {
				return err
			}
		}
		if err := tx.delete(bucketFamilies, []byte(famID)); err != nil {
			return err
		}
		if err := tx.delete(bucketFamilies, link); err != nil {
			return err
		}
	}
	return nil
}

// rangeKeys returns the keys under prefix, whose shard key is the part
// before its 0 byte.
func (tx *Tx) rangeKeys(bucket string, prefix []byte) ([][]byte, error) {
	var keys [][]byte
	err := tx.rangeShard(bucket, prefix, prefixEnd(prefix), func(k, _ []byte) error {
		keys = append(keys, k)
		return nil
	})
	return keys, err
}
