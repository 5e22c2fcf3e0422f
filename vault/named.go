package vault

import (
	"fmt"
	"strings"
)

// Users and permission groups have what keys and clients have, short of
// secrets: a random id and a name unique among their kind, either of which
// finds them, the name through the HMAC index. crud.go does the same for
// keys and clients along with their secrets; this is the part without.

// The kinds of named record that are not credentials, as the name index
// and messages call them.
const (
	kindUser  Kind = "user"
	kindGroup Kind = "permission group"
)

// namedKind says where a kind of named record lives.
type namedKind struct {
	kind     Kind
	bucket   string
	idPrefix string
}

var (
	userRecords  = namedKind{kindUser, bucketUsers, "usr_"}
	groupRecords = namedKind{kindGroup, bucketGroups, "pg_"}
)

// named is a record as stored: it tells its id and name.
type named interface {
	ident() (id, name string)
}

func (nk namedKind) isID(ref string) bool {
	return strings.HasPrefix(ref, nk.idPrefix) && idPattern().MatchString(ref)
}

// getNamed reads into rec the record ref names, by id or else by name.
func (tx *Tx) getNamed(nk namedKind, ref string, rec named) error {
	if nk.isID(ref) {
		ok, err := tx.getJSON(nk.bucket, []byte(ref), rec)
		if err != nil || ok {
			return err
		}
	}
	e, err := tx.indexGet(namePurpose(nk.kind), ref)
	if err != nil {
		return err
	}
	if e == nil {
		return fmt.Errorf("%s %q: %w", nk.kind, ref, ErrNotFound)
	}
	ok, err := tx.getJSON(nk.bucket, []byte(e.ID), rec)
	if err != nil {
		return err
	}
	if _, name := rec.ident(); !ok || name != ref {
		// The index points at a record that does not claim the name back.
		return fmt.Errorf("%s %q: name index: %w", nk.kind, ref, ErrCorrupt)
	}
	return nil
}

// getNamedByID reads the record whose id (not name) is id; ok is false if
// there is none.
func (tx *Tx) getNamedByID(nk namedKind, id string, rec named) (bool, error) {
	if !nk.isID(id) {
		return false, nil
	}
	return tx.getJSON(nk.bucket, []byte(id), rec)
}

// newNamed checks a new record's name, claims it in the index and returns
// the record's new id. The caller writes the record.
func (tx *Tx) newNamed(nk namedKind, name string) (string, error) {
	if err := ValidateName(name); err != nil {
		return "", err
	}
	if err := tx.checkNameFree(nk.kind, name); err != nil {
		return "", err
	}
	id, err := newRandomID(nk.idPrefix)
	if err != nil {
		return "", err
	}
	return id, tx.indexPut(namePurpose(nk.kind), name, indexEntry{Kind: nk.kind, ID: id})
}

// deleteNamed removes a record and its name.
func (tx *Tx) deleteNamed(nk namedKind, id, name string) error {
	if err := tx.indexDelete(namePurpose(nk.kind), name); err != nil {
		return err
	}
	return tx.delete(nk.bucket, []byte(id))
}

// resolveNamed resolves refs to records, each once however often it is
// named (by id and by name, say): all of them or, at the first missing,
// an error.
func resolveNamed[T any, P interface {
	*T
	named
}](tx *Tx, nk namedKind, refs []string) ([]P, error) {
	var out []P
	seen := map[string]bool{}
	for _, ref := range refs {
		r := P(new(T))
		if err := tx.getNamed(nk, ref, r); err != nil {
			return nil, err
		}
		if id, _ := r.ident(); !seen[id] {
			seen[id] = true
			out = append(out, r)
		}
	}
	return out, nil
}
