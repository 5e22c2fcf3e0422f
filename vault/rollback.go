package vault

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// Rollback.
//
// The head authenticates one state, but an older copy of the whole file is
// a valid state too. So each machine remembers, per vault id, the newest
// state it has seen (a small 0600 file in Options.StateDir, by default
// $XDG_STATE_HOME/keymint/), and a process remembers it in memory: a state
// with a lower revision, or the same revision with another head, is refused.
// A deliberate restore is accepted with Options.AcceptRollback (`keymint
// vault accept-rollback`).

// RollbackError reports a vault older than one this machine has seen. It
// wraps [ErrRolledBack].
type RollbackError struct {
	Path        string
	Seen, Found State
}

func (e *RollbackError) Error() string {
	what := fmt.Sprintf("this machine has seen revision %d (generation %d) of it and the file holds revision %d (generation %d)",
		e.Seen.Revision, e.Seen.Generation, e.Found.Revision, e.Found.Generation)
	if e.Found.Revision == e.Seen.Revision {
		what = fmt.Sprintf("the file holds another state than the revision %d this machine has seen", e.Seen.Revision)
	}
	return fmt.Sprintf("vault %s was rolled back or replaced by an older copy: %s; changes made since may be undone (removed keys back, revocations lost, usage reset); if you restored it on purpose, run `keymint vault accept-rollback`", e.Path, what)
}

func (e *RollbackError) Unwrap() error { return ErrRolledBack }

// rollbackGuard remembers the newest state seen of one vault.
type rollbackGuard struct {
	mu        sync.Mutex
	vaultPath string
	file      string // "" keeps the state in memory only
	seen      State
}

func newRollbackGuard(vaultPath, stateDir string, id []byte) (*rollbackGuard, error) {
	g := &rollbackGuard{vaultPath: vaultPath}
	if stateDir == "" {
		return g, nil
	}
	g.file = filepath.Join(stateDir, hex.EncodeToString(id)+".state")
	data, err := os.ReadFile(g.file)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return g, nil
	case err != nil:
		return nil, fmt.Errorf("read the vault's remembered state: %w", err)
	}
	if err := json.Unmarshal(data, &g.seen); err != nil {
		return nil, fmt.Errorf("read the vault's remembered state %s: it is damaged (%v); remove it to trust the vault as it is now", g.file, err)
	}
	return g, nil
}

// check refuses a state older than, or forked from, floor: the newest
// state seen before the transaction that read s began. (Not the newest
// seen now: on a store whose transactions run concurrently, another
// goroutine may have committed since this one's snapshot was taken.)
func (g *rollbackGuard) check(s, floor State) error {
	if s.Revision < floor.Revision ||
		(s.Revision == floor.Revision && floor.Digest != nil && !bytes.Equal(s.Digest, floor.Digest)) {
		return &RollbackError{Path: g.vaultPath, Seen: floor, Found: s}
	}
	return nil
}

// saw records a state read or committed; it is remembered if newer, or
// always when accepting a deliberate restore.
func (g *rollbackGuard) saw(s State, accept bool) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !accept && s.Revision <= g.seen.Revision {
		return nil
	}
	g.seen = s
	if g.file == "" {
		return nil
	}
	return writeStateFile(g.file, s, accept)
}

// newest returns the newest state seen.
func (g *rollbackGuard) newest() State {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.seen
}

func writeStateFile(path string, s State, force bool) error {
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	// Another process may have remembered a newer state meanwhile; keep
	// the newer (the race left can only make the check more lenient).
	if old, err := os.ReadFile(path); err == nil && !force {
		var o State
		if json.Unmarshal(old, &o) == nil && o.Revision > s.Revision {
			return nil
		}
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("remember the vault's state: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".state-*")
	if err != nil {
		return fmt.Errorf("remember the vault's state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("remember the vault's state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("remember the vault's state: %w", err)
	}
	// No fsync: after a crash the file may be older than the vault, which
	// only makes the check more lenient, never wrong.
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("remember the vault's state: %w", err)
	}
	return nil
}
