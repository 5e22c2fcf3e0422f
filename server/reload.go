package server

import (
	"bytes"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/keymint/keymint/token"
	"github.com/keymint/keymint/vault"
)

// Reloading.
//
// The server catches up with the vault through its change log: it asks for
// the records changed since the generation it serves, reads just those in
// one short read transaction, and outside it makes the next snapshot from
// the current one with those records replaced, at a cost that grows with
// the change, not with the vault (the snapshot's maps are layered, see
// layered.go). It reads everything again only at start, or when the log no
// longer reaches back to the generation it serves. It never serves a
// generation older than the one it does: the vault refuses a state older
// than one seen (vault.ErrRolledBack), and the server refuses a generation
// below its own.

// reloadCounts counts the reloads made, for tests and the log.
type reloadCounts struct {
	partial, full atomic.Int64
}

// keyChange is a key read again: its new record, or nil when removed.
type keyChange struct {
	id  string
	key *vault.Key
}

// clientChange is a client read again: its new record, or nil when removed.
type clientChange struct {
	id     string
	client *vault.Client
}

// revocationChange is a revocation read again.
type revocationChange struct {
	jti     string
	revoked bool
}

// delta is what one reload read from the vault: everything (full), or the
// records changed since the snapshot's generation.
type delta struct {
	generation uint64
	full       bool
	// changed counts the records read again: the change log's entries, or
	// for a full load every record.
	changed int

	// A full load.
	clients     []*vault.Client
	apiKeys     []*vault.Key
	revocations []vault.Revocation

	// A partial load.
	keyChanges        []keyChange
	clientChanges     []clientChange
	revocationChanges []revocationChange

	// signingKeys are every signing key, when read: always in a full load,
	// in a partial one when one changed or the key set's publication
	// moved on. Otherwise the snapshot keeps its signer and key set.
	signingKeys     []*vault.SigningKey
	readSigningKeys bool
}

// errOlderGeneration refuses a vault whose generation is below the one
// served: a rolled-back copy that the rollback guard did not catch.
type errOlderGeneration struct {
	found, served uint64
}

func (e *errOlderGeneration) Error() string {
	return fmt.Sprintf("the vault is at generation %d, older than the generation %d served: it was rolled back or replaced by an older copy; if it was restored on purpose, restart the server to serve it", e.found, e.served)
}

func (e *errOlderGeneration) Unwrap() error { return vault.ErrRolledBack }

// read reads from the vault, in one read transaction, what the snapshot cur
// needs to reach the vault's generation: everything when cur is nil or the
// change log does not reach back to cur's generation, else the records
// changed since. refreshSigning reads the signing keys even if none
// changed.
func (s *Server) read(cur *snapshot, refreshSigning bool) (*delta, error) {
	d := &delta{}
	err := s.v.View(func(tx *vault.Tx) error {
		*d = delta{generation: tx.Generation()}
		if cur != nil {
			if d.generation < cur.generation {
				return &errOlderGeneration{found: d.generation, served: cur.generation}
			}
			changes, ok, err := tx.ChangesSince(cur.generation)
			if err != nil {
				return err
			}
			if ok && !needsFull(changes) {
				return d.readChanges(tx, changes, refreshSigning)
			}
		}
		return d.readAll(tx)
	})
	if err != nil {
		return nil, fmt.Errorf("read vault: %w", err)
	}
	return d, nil
}

// needsFull reports whether changes hold a kind of change this server does
// not know how to apply alone.
func needsFull(changes []vault.Change) bool {
	for _, c := range changes {
		switch c.Kind {
		case vault.ChangeKey, vault.ChangeClient, vault.ChangeRevocation, vault.ChangeSigningKey,
			vault.ChangeSettings, vault.ChangeUser, vault.ChangePermissionGroup, vault.ChangeGrant:
		default:
			return true
		}
	}
	return false
}

// readAll reads every record the server serves. Keys and clients are
// streamed without their last use, which the server does not serve.
func (d *delta) readAll(tx *vault.Tx) error {
	d.full = true
	if err := tx.EachClient(func(c *vault.Client) error {
		d.clients = append(d.clients, c)
		return nil
	}); err != nil {
		return err
	}
	if err := tx.EachKey(func(k *vault.Key) error {
		d.apiKeys = append(d.apiKeys, k)
		return nil
	}); err != nil {
		return err
	}
	var err error
	if d.signingKeys, err = tx.SigningKeys(); err != nil {
		return err
	}
	d.readSigningKeys = true
	if d.revocations, err = tx.Revocations(); err != nil {
		return err
	}
	d.changed = len(d.clients) + len(d.apiKeys) + len(d.signingKeys) + len(d.revocations)
	return nil
}

// readChanges reads the records of changes again, by point reads.
func (d *delta) readChanges(tx *vault.Tx, changes []vault.Change, refreshSigning bool) error {
	d.readSigningKeys = refreshSigning
	for _, c := range changes {
		switch c.Kind {
		case vault.ChangeKey:
			k, err := tx.Key(c.Key)
			if err = gone(err); err != nil {
				return err
			}
			if k != nil && k.ID != c.Key {
				k = nil // not this id: the record is gone
			}
			d.keyChanges = append(d.keyChanges, keyChange{id: c.Key, key: k})
		case vault.ChangeClient:
			cl, err := tx.Client(c.Key)
			if err = gone(err); err != nil {
				return err
			}
			if cl != nil && cl.ID != c.Key {
				cl = nil
			}
			d.clientChanges = append(d.clientChanges, clientChange{id: c.Key, client: cl})
		case vault.ChangeRevocation:
			revoked, err := tx.Revoked(c.Key)
			if err != nil {
				return err
			}
			d.revocationChanges = append(d.revocationChanges, revocationChange{jti: c.Key, revoked: revoked})
		case vault.ChangeSigningKey:
			d.readSigningKeys = true
		}
		// Settings, users, permission groups and grants hold nothing the
		// snapshot serves (the authorization endpoint reads them from the
		// vault when it needs them); index entries are not logged.
	}
	d.changed = len(changes)
	if d.readSigningKeys {
		var err error
		if d.signingKeys, err = tx.SigningKeys(); err != nil {
			return err
		}
	}
	return nil
}

// gone turns a record's absence into no error (the record is then nil).
func gone(err error) error {
	if errors.Is(err, vault.ErrNotFound) {
		return nil
	}
	return err
}

// build makes the snapshot d describes: from nothing for a full load, else
// from cur with d's records replaced. It reads no vault.
func (s *Server) build(cur *snapshot, d *delta, now time.Time) (*snapshot, error) {
	var next snapshot
	if d.full {
		next = s.buildFull(d)
	} else {
		next = *cur
		applyChanges(&next, d)
	}
	next.generation = d.generation
	if d.readSigningKeys {
		if err := s.buildSigning(&next, d.signingKeys, now); err != nil {
			return nil, err
		}
	}
	return &next, nil
}

// buildFull makes the record maps of a full load, each a bare base.
func (s *Server) buildFull(d *delta) snapshot {
	clients := make(map[string]*vault.Client, len(d.clients))
	for _, c := range d.clients {
		clients[c.ID] = c
	}
	byMAC := make(map[string]*verifyKey, len(d.apiKeys))
	byID := make(map[string]*verifyKey, len(d.apiKeys))
	for _, k := range d.apiKeys {
		vk := newVerifyKey(k)
		byID[k.ID] = vk
		for _, sec := range k.Secrets {
			byMAC[string(sec.MAC)] = vk
		}
	}
	revoked := make(map[string]struct{}, len(d.revocations))
	for _, r := range d.revocations {
		revoked[r.JTI] = struct{}{}
	}
	return snapshot{
		clients:  newLayered(clients),
		apiKeys:  newLayered(byMAC),
		keysByID: newLayered(byID),
		revoked:  newLayered(revoked),
	}
}

// applyChanges replaces in next the keys, clients and revocations that d
// read again.
func applyChanges(next *snapshot, d *delta) {
	if len(d.keyChanges) > 0 {
		var macDrops, macSets, ids []edit[*verifyKey]
		for _, kc := range d.keyChanges {
			var vk *verifyKey
			if kc.key != nil {
				vk = newVerifyKey(kc.key)
			}
			// The old record's secrets, retired ones included, are
			// dropped unless the new one still has them.
			if old, ok := next.keysByID.get(kc.id); ok {
				for _, sec := range old.key.Secrets {
					if vk == nil || !hasSecret(vk.key, sec.MAC) {
						macDrops = append(macDrops, edit[*verifyKey]{key: string(sec.MAC), del: true})
					}
				}
			}
			if vk == nil {
				ids = append(ids, edit[*verifyKey]{key: kc.id, del: true})
				continue
			}
			ids = append(ids, edit[*verifyKey]{key: kc.id, val: vk})
			for _, sec := range vk.key.Secrets {
				macSets = append(macSets, edit[*verifyKey]{key: string(sec.MAC), val: vk})
			}
		}
		next.apiKeys = next.apiKeys.apply(append(macDrops, macSets...))
		next.keysByID = next.keysByID.apply(ids)
	}
	if len(d.clientChanges) > 0 {
		edits := make([]edit[*vault.Client], 0, len(d.clientChanges))
		for _, cc := range d.clientChanges {
			edits = append(edits, edit[*vault.Client]{key: cc.id, val: cc.client, del: cc.client == nil})
		}
		next.clients = next.clients.apply(edits)
	}
	if len(d.revocationChanges) > 0 {
		edits := make([]edit[struct{}], 0, len(d.revocationChanges))
		for _, rc := range d.revocationChanges {
			edits = append(edits, edit[struct{}]{key: rc.jti, del: !rc.revoked})
		}
		next.revoked = next.revoked.apply(edits)
	}
}

func hasSecret(k *vault.Key, mac []byte) bool {
	for _, sec := range k.Secrets {
		if bytes.Equal(sec.MAC, mac) {
			return true
		}
	}
	return false
}

// buildSigning sets next's signer, key set, the end of its publication
// window and the documents that depend on the key set.
func (s *Server) buildSigning(next *snapshot, keys []*vault.SigningKey, now time.Time) error {
	signer, err := token.ActiveSigner(keys)
	if err != nil {
		return err
	}
	ks, err := token.PublishedKeySet(keys, now)
	if err != nil {
		return err
	}
	next.signer, next.keys, next.staleAt = signer, ks, time.Time{}
	for _, k := range keys {
		if !k.Active() && k.Published(now) && k.PublishUntil != nil {
			if next.staleAt.IsZero() || k.PublishUntil.Before(next.staleAt) {
				next.staleAt = *k.PublishUntil
			}
		}
	}
	return s.encodeDocuments(next)
}

// stale reports whether the published key set changes at now without a
// vault write: a retired key's publication has ended.
func (snap *snapshot) stale(now time.Time) bool {
	return !snap.staleAt.IsZero() && !now.Before(snap.staleAt)
}

// load reads the whole vault into a snapshot, for a new server.
func (s *Server) load() (*snapshot, error) {
	d, err := s.read(nil, true)
	if err != nil {
		return nil, err
	}
	return s.build(nil, d, s.now())
}

// Reload brings the snapshot up to the vault's generation now, reading only
// the records changed since the generation served when the vault's change
// log reaches back that far, and everything otherwise. [Server.Run] calls
// it whenever the vault's generation changes. It refuses a vault older than
// the generation served, with an error wrapping [vault.ErrRolledBack], and
// keeps serving what it has.
func (s *Server) Reload() error {
	s.ioMu.Lock()
	defer s.ioMu.Unlock()
	return s.reloadLocked()
}

func (s *Server) reloadLocked() error {
	start := time.Now()
	cur := s.current()
	stale := cur.stale(s.now())
	d, err := s.read(cur, stale)
	if err != nil {
		return err
	}
	if !d.full && d.generation == cur.generation && d.changed == 0 && !stale {
		return nil // nothing changed
	}
	// The clock is read after the transaction, so that a publication
	// window that ended meanwhile is not taken for open.
	snap, err := s.build(cur, d, s.now())
	if err != nil {
		return err
	}
	s.snap.Store(snap)
	took := time.Since(start)
	if d.full {
		s.reloads.full.Add(1)
		s.metrics.reloads[1].Inc()
	} else {
		s.reloads.partial.Add(1)
		s.metrics.reloads[0].Inc()
	}
	s.metrics.reloadSeconds.Observe(took.Seconds())
	s.metrics.generation.Set(float64(snap.generation))
	s.log.Info("reloaded the vault", "generation", snap.generation, "previous_generation", cur.generation,
		"changed", d.changed, "full", d.full, "clients", snap.clients.len(), "keys", snap.keysByID.len(),
		"duration", took)
	return nil
}

// poll reloads if the vault changed or the key set's publication window
// moved on, and notes the outcome for /healthz and /readyz. Errors are
// logged once until they change or clear: the server keeps serving its last
// snapshot meanwhile, and a vault older than it serves is never taken.
func (s *Server) poll() {
	// A change notification that came before this poll began is served
	// by it, if it moved the generation: the watch lag ends here.
	noted := s.notedAt.Swap(0)
	gen, err := s.v.Generation()
	at := s.now()
	if err == nil {
		s.ioMu.Lock()
		cur := s.current()
		if gen != cur.generation || cur.stale(at) {
			s.reloadingTo.Store(gen)
			err = s.reloadLocked()
			s.reloadingTo.Store(0)
		}
		if next := s.current(); err == nil && noted != 0 && next.generation != cur.generation {
			s.metrics.watchLag.Observe(time.Since(time.Unix(0, noted)).Seconds())
		}
		s.ioMu.Unlock()
	}
	if err != nil {
		s.metrics.storeError(opReload)
	}
	s.setVaultTrouble(err)
	s.notePoll(at, gen, err)
	switch {
	case err != nil && err.Error() != s.lastPollErr:
		msg := "cannot read the vault; serving what was read before"
		if errors.Is(err, vault.ErrRolledBack) {
			msg = "the vault is older than what is served; refusing it and serving what was read before"
		}
		s.log.Error(msg, "err", err)
		s.lastPollErr = err.Error()
	case err == nil && s.lastPollErr != "":
		s.log.Info("vault readable again")
		s.lastPollErr = ""
	}
}
