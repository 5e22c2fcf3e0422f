package vault

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"
)

// Location is where a vault lives: a file (the embedded default), or a key
// prefix in an etcd cluster, which several keymint processes on several
// machines share. The functions that take a Location are the ones a command
// needs without knowing which it is.
type Location struct {
	// File is the vault file's path, when Etcd is nil.
	File string
	// Etcd is the cluster and prefix, with the credentials to reach it.
	Etcd *EtcdConfig
}

// IsEtcdURL reports whether s names an etcd location (etcd:// or etcds://)
// rather than a file.
func IsEtcdURL(s string) bool {
	return strings.HasPrefix(s, "etcd://") || strings.HasPrefix(s, "etcds://")
}

// String names the location in messages: the path, or the etcd URL
// without credentials.
func (l Location) String() string {
	if l.Etcd != nil {
		return l.Etcd.URL()
	}
	return l.File
}

// openEtcd connects to the location's cluster.
func (l Location) openEtcd() (*EtcdStore, error) {
	return OpenEtcdStore(*l.Etcd)
}

// storeHasVault reports whether store holds a vault (its format is set).
func storeHasVault(store Store) (bool, error) {
	var has bool
	err := store.View(func(st ReadTx) error {
		v, err := st.Get(bucketMeta, metaFormat)
		has = v != nil
		return err
	})
	return has, err
}

// mustHaveVault is nil if store holds a vault, else [ErrNoVault] naming l,
// or why it could not tell.
func (l Location) mustHaveVault(store Store) error {
	has, err := storeHasVault(store)
	if err == nil && !has {
		err = fmt.Errorf("%s: %w", l, ErrNoVault)
	}
	return err
}

// withEtcd runs fn on a connection to the location's cluster, and closes
// it after unless keep says fn kept it.
func (l Location) withEtcd(fn func(*EtcdStore) (keep bool, err error)) error {
	s, err := l.openEtcd()
	if err != nil {
		return err
	}
	keep, err := fn(s)
	if !keep {
		s.Close()
	}
	return err
}

// withStore runs fn on the store at l, which must hold a vault
// ([ErrNoVault] if not), and closes what it opened.
func (l Location) withStore(opts Options, fn func(Store) error) error {
	if l.Etcd == nil {
		if err := l.Exists(); err != nil {
			return err
		}
		return fn(openBoltStore(l.File, opts.lockTimeout()))
	}
	return l.withEtcd(func(s *EtcdStore) (bool, error) {
		if err := l.mustHaveVault(s); err != nil {
			return false, err
		}
		return false, fn(s)
	})
}

// Exists says whether a vault is at l: [ErrNoVault] (wrapped, naming l) if
// not, nil if so, or why it could not tell.
func (l Location) Exists() error {
	if l.Etcd == nil {
		_, err := os.Stat(l.File)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return fmt.Errorf("%s: %w", l.File, ErrNoVault)
		}
		return err
	}
	return l.withEtcd(func(s *EtcdStore) (bool, error) { return false, l.mustHaveVault(s) })
}

// OpenAt opens the vault at l, as [Open] opens a file. A vault in etcd
// keeps its connection until [Vault.Close].
func OpenAt(l Location, opts Options) (*Vault, error) {
	if l.Etcd == nil {
		return Open(l.File, opts)
	}
	var v *Vault
	err := l.withEtcd(func(s *EtcdStore) (bool, error) {
		if err := l.mustHaveVault(s); err != nil {
			return false, err
		}
		var err error
		if v, err = OpenStore(s, l.String(), opts); err != nil {
			return false, err
		}
		v.closer = s
		return true, nil
	})
	return v, err
}

// CreateAt makes a new vault at l, as [Create] makes a file: never over an
// existing one.
func CreateAt(l Location, co CreateOptions) error {
	if l.Etcd == nil {
		return Create(l.File, co)
	}
	return l.withEtcd(func(s *EtcdStore) (bool, error) {
		_, err := CreateIn(s, l.String(), co)
		return false, err
	})
}

// Close releases what the vault holds open between transactions: nothing
// for a file, the connection to etcd for a vault there.
func (v *Vault) Close() error {
	if v.closer == nil {
		return nil
	}
	return v.closer.Close()
}

// changeWatcher is a store that tells of commits as they happen: EtcdStore.
type changeWatcher interface {
	Watch(ctx context.Context) <-chan int64
}

// Changes returns a channel that receives a value soon after every commit
// to the vault's store by any process, until ctx ends: etcd's watch, for a
// server to reload at once instead of at its next poll. It returns nil for
// a store that cannot tell (a file: poll its generation).
func (v *Vault) Changes(ctx context.Context) <-chan int64 {
	if w, ok := v.store.(changeWatcher); ok {
		return w.Watch(ctx)
	}
	return nil
}
