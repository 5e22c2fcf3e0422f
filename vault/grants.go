package vault

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Grant is a user's authorization of a client: the scopes the user
// consented to let it have, so that a later sign-in asks again only for
// more. There is at most one per user and client. Revoking it ends every
// refresh token issued under it.
type Grant struct {
	ID       string   `json:"id"`
	UserID   string   `json:"user_id"`
	ClientID string   `json:"client_id"`
	Scopes   []string `json:"scopes"`
	// CreatedAt is the first consent; UpdatedAt the last that added scopes.
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// LastUsedAt is the grant's last access ([Tx.TouchGrant]): usage data,
	// kept with usage like a credential's last use, so that recording it
	// never advances the generation. It is filled in by every read.
	LastUsedAt *time.Time `json:"-"`
}

// GrantFilter selects grants: those of one user, of one client, or both;
// the zero filter selects every grant.
type GrantFilter struct {
	UserID, ClientID string
}

// The grant index (bucketGrantIndex) finds a grant from either side: at
// user id, 0, client id and at client id, 0, user id, each holding the
// grant id. Its shard key is the id before the 0, so a user's grants, and
// a client's, are each one range.
func grantIndexKey(a, b string) []byte { return []byte(a + "\x00" + b) }

func (tx *Tx) grantByID(id string) (*Grant, error) {
	if !strings.HasPrefix(id, "grt_") {
		return nil, nil
	}
	var g Grant
	ok, err := tx.getJSON(bucketGrants, []byte(id), &g)
	if err != nil || !ok {
		return nil, err
	}
	return &g, nil
}

// grantFor finds the grant of a user to a client; nil if there is none.
func (tx *Tx) grantFor(userID, clientID string) (*Grant, error) {
	var id string
	ok, err := tx.getJSON(bucketGrantIndex, grantIndexKey(userID, clientID), &id)
	if err != nil || !ok {
		return nil, err
	}
	g, err := tx.grantByID(id)
	if err != nil {
		return nil, err
	}
	if g == nil || g.UserID != userID || g.ClientID != clientID {
		return nil, fmt.Errorf("grant of user %s to client %s: grant index: %w", userID, clientID, ErrCorrupt)
	}
	return g, nil
}

// GrantFor returns the grant user userID gave client clientID (both ids),
// or an error wrapping [ErrNotFound].
func (tx *Tx) GrantFor(userID, clientID string) (*Grant, error) {
	g, err := tx.grantFor(userID, clientID)
	if err != nil {
		return nil, err
	}
	if g == nil {
		return nil, fmt.Errorf("grant of user %s to client %s: %w", userID, clientID, ErrNotFound)
	}
	return g, tx.fillGrantLastUsed([]*Grant{g})
}

// Grant returns the grant with this id.
func (tx *Tx) Grant(id string) (*Grant, error) {
	g, err := tx.grantByID(id)
	if err != nil {
		return nil, err
	}
	if g == nil {
		return nil, fmt.Errorf("grant %q: %w", id, ErrNotFound)
	}
	return g, tx.fillGrantLastUsed([]*Grant{g})
}

// SaveGrant records that user g.UserID consented to client g.ClientID
// having g.Scopes (both ids). The first consent creates the grant; a later
// one adds the scopes it lacked. A consent that adds nothing writes
// nothing, so that signing in again under a grant costs no reload of any
// server. g is then the grant as stored.
func (tx *Tx) SaveGrant(g *Grant) error {
	user, err := tx.userByID(g.UserID)
	if err != nil {
		return err
	}
	if user == nil {
		return fmt.Errorf("grant: user %q: %w", g.UserID, ErrNotFound)
	}
	if ok, err := tx.exists(bucketClients, []byte(g.ClientID)); err != nil || !ok {
		return cmp.Or(err, fmt.Errorf("grant: client %q: %w", g.ClientID, ErrNotFound))
	}
	stored, err := tx.grantFor(g.UserID, g.ClientID)
	if err != nil {
		return err
	}
	if stored == nil {
		id, err := newRandomID("grt_")
		if err != nil {
			return err
		}
		*g = Grant{ID: id, UserID: g.UserID, ClientID: g.ClientID, Scopes: union(nil, g.Scopes), CreatedAt: tx.now, UpdatedAt: tx.now}
		for _, k := range [][]byte{grantIndexKey(g.UserID, g.ClientID), grantIndexKey(g.ClientID, g.UserID)} {
			if err := tx.putJSON(bucketGrantIndex, k, g.ID); err != nil {
				return err
			}
		}
		if err := tx.putJSON(bucketGrants, []byte(g.ID), g); err != nil {
			return err
		}
		return tx.Audit("grant.create", g.ID, grantDetail(g, user.Name))
	}
	scopes := union(stored.Scopes, g.Scopes)
	*g = *stored
	if len(scopes) == len(stored.Scopes) {
		return tx.fillGrantLastUsed([]*Grant{g})
	}
	g.Scopes, g.UpdatedAt = scopes, tx.now
	if err := tx.putJSON(bucketGrants, []byte(g.ID), g); err != nil {
		return err
	}
	if err := tx.fillGrantLastUsed([]*Grant{g}); err != nil {
		return err
	}
	return tx.Audit("grant.update", g.ID, grantDetail(g, user.Name))
}

func grantDetail(g *Grant, userName string) string {
	return fmt.Sprintf("user %s, client %s: %s", userName, g.ClientID, strings.Join(g.Scopes, " "))
}

// union returns have followed by the scopes of add it lacks, once each.
func union(have, add []string) []string {
	out := slices.Clone(have)
	for _, s := range add {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// Grants returns the grants f selects, oldest first. A user's or a
// client's are found through the grant index, without reading the others.
func (tx *Tx) Grants(f GrantFilter) ([]*Grant, error) {
	var out []*Grant
	switch {
	case f.UserID != "" && f.ClientID != "":
		g, err := tx.grantFor(f.UserID, f.ClientID)
		if err != nil {
			return nil, err
		}
		if g != nil {
			out = append(out, g)
		}
	case f.UserID != "" || f.ClientID != "":
		ids, err := tx.grantIDsOf(cmp.Or(f.UserID, f.ClientID))
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			g, err := tx.grantByID(id)
			if err != nil {
				return nil, err
			}
			if g == nil {
				return nil, fmt.Errorf("grant %s: grant index: %w", id, ErrCorrupt)
			}
			out = append(out, g)
		}
	default:
		err := forEachJSON(tx, bucketGrants, func(_ []byte, g *Grant) error {
			out = append(out, g)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	slices.SortFunc(out, func(a, b *Grant) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID, b.ID))
	})
	return out, tx.fillGrantLastUsed(out)
}

// grantIDsOf returns the ids of the grants of a user or a client (by id).
func (tx *Tx) grantIDsOf(owner string) ([]string, error) {
	prefix := grantIndexKey(owner, "")
	var ids []string
	err := tx.rangeShard(bucketGrantIndex, prefix, prefixEnd(prefix), func(k, sealed []byte) error {
		var id string
		if err := tx.openJSON(bucketGrantIndex, k, sealed, &id); err != nil {
			return err
		}
		ids = append(ids, id)
		return nil
	})
	return ids, err
}

// RevokeGrant removes a grant and every refresh token issued under it.
// Codes issued under it are refused when presented.
func (tx *Tx) RevokeGrant(id string) error {
	g, err := tx.grantByID(id)
	if err != nil {
		return err
	}
	if g == nil {
		return fmt.Errorf("grant %q: %w", id, ErrNotFound)
	}
	return tx.dropGrant(g, "revoked")
}

// dropGrantsOf removes the grants of a user or client being removed.
func (tx *Tx) dropGrantsOf(owner, why string) error {
	ids, err := tx.grantIDsOf(owner)
	if err != nil {
		return err
	}
	for _, id := range ids {
		g, err := tx.grantByID(id)
		if err != nil {
			return err
		}
		if g == nil {
			return fmt.Errorf("grant %s: grant index: %w", id, ErrCorrupt)
		}
		if err := tx.dropGrant(g, why); err != nil {
			return err
		}
	}
	return nil
}

func (tx *Tx) dropGrant(g *Grant, why string) error {
	if err := tx.dropGrantFamilies(g.ID); err != nil {
		return err
	}
	if err := tx.deleteUsage(g.ID); err != nil {
		return err
	}
	for _, k := range [][]byte{grantIndexKey(g.UserID, g.ClientID), grantIndexKey(g.ClientID, g.UserID)} {
		if err := tx.delete(bucketGrantIndex, k); err != nil {
			return err
		}
	}
	if err := tx.delete(bucketGrants, []byte(g.ID)); err != nil {
		return err
	}
	return tx.Audit("grant.revoke", g.ID, fmt.Sprintf("user %s, client %s: %s", g.UserID, g.ClientID, why))
}

// TouchGrant records an access under grant id at at (the transaction's
// time if zero), unless a later one is recorded: a server writes last
// accesses in batches, in whatever order they come. It is usage data and
// does not advance the generation. An unknown grant (revoked meanwhile) is
// an error wrapping [ErrNotFound].
func (tx *Tx) TouchGrant(id string, at time.Time) error {
	if at.IsZero() {
		at = tx.now
	}
	if ok, err := tx.exists(bucketGrants, []byte(id)); err != nil || !ok {
		return cmp.Or(err, fmt.Errorf("grant %q: %w", id, ErrNotFound))
	}
	last, err := tx.lastUses([]string{id})
	if err != nil {
		return err
	}
	if t, ok := last[id]; ok && !t.Before(at) {
		return nil
	}
	return tx.putJSON(bucketUsage, lastUsedKey(id), at.UTC())
}

func (tx *Tx) fillGrantLastUsed(grants []*Grant) error {
	ids := make([]string, len(grants))
	for i, g := range grants {
		ids[i] = g.ID
	}
	last, err := tx.lastUses(ids)
	if err != nil {
		return err
	}
	for _, g := range grants {
		g.LastUsedAt = nil
		if t, ok := last[g.ID]; ok {
			g.LastUsedAt = &t
		}
	}
	return nil
}
