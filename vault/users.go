package vault

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// User is a person who signs in at /authorize. Its ID is the sub of the
// tokens issued to them, so it never changes and is not guessable; Name is
// the login.
type User struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Email       string `json:"email,omitempty"`
	DisplayName string `json:"display_name,omitempty"`
	// PasswordHash is the PHC string of the password's hash ("$argon2id$
	// v=19$m=...,t=...,p=...$salt$hash"), computed and checked by the
	// caller: the vault stores it and never sees a password. It is left out
	// when a User is encoded as JSON (userRecord stores it), so that no
	// listing shows it by accident.
	PasswordHash      string    `json:"-"`
	CreatedAt         time.Time `json:"created_at"`
	PasswordChangedAt time.Time `json:"password_changed_at"`
	// Disabled users cannot sign in, and what was issued to them stops
	// working: their codes and refresh tokens are refused.
	Disabled bool `json:"disabled,omitempty"`
}

// userRecord is a User as stored, with its password hash.
type userRecord struct {
	User
	PasswordHash string `json:"password_hash"`
}

func (r *userRecord) ident() (string, string) { return r.ID, r.Name }

func (r *userRecord) user() *User {
	u := r.User
	u.PasswordHash = r.PasswordHash
	return &u
}

func (tx *Tx) putUser(u *User) error {
	return tx.putJSON(bucketUsers, []byte(u.ID), &userRecord{User: *u, PasswordHash: u.PasswordHash})
}

// ErrPasswordHash reports a password hash that is not a PHC string: most
// likely a password given where its hash belongs. It never quotes the value.
var ErrPasswordHash = errors.New("password hash is not a PHC string such as $argon2id$v=19$m=65536,t=3,p=4$salt$hash; the vault stores a hash the caller computed, never a password")

var phcPattern = lazyRegexp(`^\$[a-z0-9-]{1,32}(\$[A-Za-z0-9+/.=,-]+)+$`)

// maxPasswordHash bounds a stored hash; argon2id's are about 100 bytes.
const maxPasswordHash = 512

func checkPasswordHash(h string) error {
	if len(h) > maxPasswordHash || !phcPattern().MatchString(h) {
		return ErrPasswordHash
	}
	return nil
}

// CreateUser stores a new user under u.Name, which must be free among
// users, with u.PasswordHash. It assigns u.ID, u.CreatedAt and
// u.PasswordChangedAt.
func (tx *Tx) CreateUser(u *User) error {
	if err := checkPasswordHash(u.PasswordHash); err != nil {
		return fmt.Errorf("user %q: %w", u.Name, err)
	}
	id, err := tx.newNamed(userRecords, u.Name)
	if err != nil {
		return err
	}
	u.ID, u.CreatedAt, u.PasswordChangedAt = id, tx.now, tx.now
	if err := tx.putUser(u); err != nil {
		return err
	}
	return tx.Audit("user.create", u.ID, u.Name)
}

// User returns the user with this id or name, with its password hash.
func (tx *Tx) User(ref string) (*User, error) {
	var r userRecord
	if err := tx.getNamed(userRecords, ref, &r); err != nil {
		return nil, err
	}
	return r.user(), nil
}

// userByID reads a user by id alone; nil if there is none.
func (tx *Tx) userByID(id string) (*User, error) {
	var r userRecord
	ok, err := tx.getNamedByID(userRecords, id, &r)
	if err != nil || !ok {
		return nil, err
	}
	return r.user(), nil
}

// Users returns every user, ordered by name.
func (tx *Tx) Users() ([]*User, error) {
	var out []*User
	err := forEachJSON(tx, bucketUsers, func(_ []byte, r *userRecord) error {
		out = append(out, r.user())
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b *User) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// SaveUser rewrites the user u.ID names: its email, display name, disabled
// flag and password hash. Its name and creation time are the stored ones.
// A new hash sets PasswordChangedAt. A save that changes nothing writes
// nothing. The audit log says what changed, never the hash.
func (tx *Tx) SaveUser(u *User) error {
	if err := checkPasswordHash(u.PasswordHash); err != nil {
		return fmt.Errorf("user %q: %w", u.Name, err)
	}
	stored, err := tx.userByID(u.ID)
	if err != nil {
		return err
	}
	if stored == nil {
		return fmt.Errorf("user %q: %w", u.ID, ErrNotFound)
	}
	u.Name, u.CreatedAt, u.PasswordChangedAt = stored.Name, stored.CreatedAt, stored.PasswordChangedAt
	passwd := u.PasswordHash != stored.PasswordHash
	if passwd {
		u.PasswordChangedAt = tx.now
	}
	var changed []string
	for _, f := range []struct {
		name string
		diff bool
	}{
		{"email", u.Email != stored.Email},
		{"display name", u.DisplayName != stored.DisplayName},
		{"disabled", u.Disabled && !stored.Disabled},
		{"enabled", !u.Disabled && stored.Disabled},
	} {
		if f.diff {
			changed = append(changed, f.name)
		}
	}
	if !passwd && len(changed) == 0 {
		return nil
	}
	if err := tx.putUser(u); err != nil {
		return err
	}
	if passwd {
		if err := tx.Audit("user.passwd", u.ID, u.Name); err != nil {
			return err
		}
	}
	if len(changed) == 0 {
		return nil
	}
	return tx.Audit("user.update", u.ID, u.Name+": "+strings.Join(changed, ", "))
}

// DeleteUsers removes the named users, or none if one is missing, with
// everything they allowed: their grants, and the refresh tokens issued
// under those.
func (tx *Tx) DeleteUsers(refs ...string) ([]*User, error) {
	recs, err := resolveNamed[userRecord](tx, userRecords, refs)
	if err != nil {
		return nil, err
	}
	out := make([]*User, len(recs))
	for i, r := range recs {
		if err := tx.dropGrantsOf(r.ID, "user "+r.Name+" removed"); err != nil {
			return nil, err
		}
		if err := tx.deleteNamed(userRecords, r.ID, r.Name); err != nil {
			return nil, err
		}
		if err := tx.Audit("user.delete", r.ID, r.Name); err != nil {
			return nil, err
		}
		out[i] = r.user()
	}
	return out, nil
}
