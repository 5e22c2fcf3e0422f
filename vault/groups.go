package vault

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// PermissionGroup is a named set of scopes that clients share: a client
// that names one may ask for the group's scopes instead of its own, so
// that changing the group changes what all of them may ask for.
type PermissionGroup struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Scopes      []string  `json:"scopes"`
	Description string    `json:"description,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
}

func (g *PermissionGroup) ident() (string, string) { return g.ID, g.Name }

// ErrGroupInUse is wrapped by [GroupInUseError].
var ErrGroupInUse = errors.New("permission group is in use")

// GroupInUseError refuses to remove a permission group that clients name:
// they would be left asking for scopes of a group that is gone.
type GroupInUseError struct {
	ID, Name string
	// Clients are the names of the clients that name the group.
	Clients []string
}

func (e *GroupInUseError) Error() string {
	return fmt.Sprintf("%v: %s is the group of client %s; give them another group or remove them first",
		ErrGroupInUse, e.Name, strings.Join(e.Clients, ", "))
}

func (e *GroupInUseError) Unwrap() error { return ErrGroupInUse }

// CreatePermissionGroup stores a new group under g.Name, which must be free
// among groups. It assigns g.ID and g.CreatedAt.
func (tx *Tx) CreatePermissionGroup(g *PermissionGroup) error {
	id, err := tx.newNamed(groupRecords, g.Name)
	if err != nil {
		return err
	}
	g.ID, g.CreatedAt = id, tx.now
	if err := tx.putJSON(bucketGroups, []byte(g.ID), g); err != nil {
		return err
	}
	return tx.Audit("permission_group.create", g.ID, g.Name+": "+strings.Join(g.Scopes, " "))
}

// PermissionGroup returns the group with this id or name.
func (tx *Tx) PermissionGroup(ref string) (*PermissionGroup, error) {
	var g PermissionGroup
	if err := tx.getNamed(groupRecords, ref, &g); err != nil {
		return nil, err
	}
	return &g, nil
}

// PermissionGroups returns every group, ordered by name.
func (tx *Tx) PermissionGroups() ([]*PermissionGroup, error) {
	var out []*PermissionGroup
	err := forEachJSON(tx, bucketGroups, func(_ []byte, g *PermissionGroup) error {
		out = append(out, g)
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b *PermissionGroup) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// SavePermissionGroup rewrites the scopes and description of the group
// g.ID names; its name and creation time are the stored ones.
func (tx *Tx) SavePermissionGroup(g *PermissionGroup) error {
	var stored PermissionGroup
	ok, err := tx.getNamedByID(groupRecords, g.ID, &stored)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%s %q: %w", kindGroup, g.ID, ErrNotFound)
	}
	g.Name, g.CreatedAt = stored.Name, stored.CreatedAt
	if err := tx.putJSON(bucketGroups, []byte(g.ID), g); err != nil {
		return err
	}
	return tx.Audit("permission_group.update", g.ID, g.Name+": "+strings.Join(g.Scopes, " "))
}

// DeletePermissionGroups removes the named groups, or none if one is
// missing or still named by a client (a [GroupInUseError]). It reads every
// client: an operator's command, not a hot path.
func (tx *Tx) DeletePermissionGroups(refs ...string) ([]*PermissionGroup, error) {
	groups, err := resolveNamed[PermissionGroup](tx, groupRecords, refs)
	if err != nil {
		return nil, err
	}
	users := map[string][]string{}
	err = each[Client](tx, func(c *Client) error {
		if c.PermissionGroup != "" {
			users[c.PermissionGroup] = append(users[c.PermissionGroup], c.Name)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, g := range groups {
		if clients := users[g.ID]; len(clients) > 0 {
			slices.Sort(clients)
			return nil, &GroupInUseError{ID: g.ID, Name: g.Name, Clients: clients}
		}
	}
	for _, g := range groups {
		if err := tx.deleteNamed(groupRecords, g.ID, g.Name); err != nil {
			return nil, err
		}
		if err := tx.Audit("permission_group.delete", g.ID, g.Name); err != nil {
			return nil, err
		}
	}
	return groups, nil
}

// ClientScopes returns the scopes client c may ask for: its permission
// group's if it names one, else its own.
func (tx *Tx) ClientScopes(c *Client) ([]string, error) {
	if c.PermissionGroup == "" {
		return c.Scopes, nil
	}
	var g PermissionGroup
	ok, err := tx.getNamedByID(groupRecords, c.PermissionGroup, &g)
	if err != nil {
		return nil, err
	}
	if !ok {
		// Removing a group that a client names is refused, so only a
		// record read before the group went can get here.
		return nil, fmt.Errorf("client %s: its %s %s: %w", c.Name, kindGroup, c.PermissionGroup, ErrNotFound)
	}
	return g.Scopes, nil
}

// resolveClientGroup checks that the group a client names exists, and
// names it by id (a caller may give its name).
func (tx *Tx) resolveClientGroup(c *Client) error {
	if c.PermissionGroup == "" {
		return nil
	}
	g, err := tx.PermissionGroup(c.PermissionGroup)
	if err != nil {
		return fmt.Errorf("client %s: %w", c.Name, err)
	}
	c.PermissionGroup = g.ID
	return nil
}
