package server_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/keymint/keymint/server"
	"github.com/keymint/keymint/token"
	"github.com/keymint/keymint/vault"
)

// flakyStore is a vault.Store in memory that a test can make unreachable,
// as an etcd cluster cut off from the server would be, and whose reads of
// the change log it can hold, to catch a reload half done.
type flakyStore struct {
	vault.Store
	down  atomic.Bool
	views atomic.Int64 // read transactions begun

	mu sync.Mutex
	// hold, when set, is called by a read of the change log before it
	// reads; it is cleared when called.
	hold func()
}

var errStoreDown = errors.New("store unreachable (test)")

func (s *flakyStore) View(fn func(vault.ReadTx) error) error {
	s.views.Add(1)
	if s.down.Load() {
		return fmt.Errorf("flaky store: %w", errStoreDown)
	}
	return s.Store.View(func(tx vault.ReadTx) error { return fn(&heldTx{ReadTx: tx, s: s}) })
}

func (s *flakyStore) Update(fn func(vault.WriteTx) error) error {
	if s.down.Load() {
		return fmt.Errorf("flaky store: %w", errStoreDown)
	}
	return s.Store.Update(fn)
}

// holdChangeLog makes the next read of the change log wait until release
// is called; reached is closed when it starts waiting.
func (s *flakyStore) holdChangeLog() (reached <-chan struct{}, release func()) {
	r, rel := make(chan struct{}), make(chan struct{})
	s.mu.Lock()
	s.hold = func() { close(r); <-rel }
	s.mu.Unlock()
	return r, sync.OnceFunc(func() { close(rel) })
}

type heldTx struct {
	vault.ReadTx
	s *flakyStore
}

func (t *heldTx) Get(bucket string, key []byte) ([]byte, error) {
	if bucket == "changes" {
		t.s.mu.Lock()
		hold := t.s.hold
		t.s.hold = nil
		t.s.mu.Unlock()
		if hold != nil {
			hold()
		}
	}
	return t.ReadTx.Get(bucket, key)
}

// storeEnv is an env whose vault is in a flakyStore, as a replica's on
// etcd is, with a client and a key that have limits.
type storeEnv struct {
	*env
	store    *flakyStore
	metered  testClient // a client_credentials client limited to 1000 a day
	meterKey testKey    // an API key limited to 1000 a day
}

const storeEnvInterval = time.Second

// newStoreEnv makes a storeEnv whose server polls every second by its
// clock (Run is not started: tests poll with server.Poll).
func newStoreEnv(t testing.TB, adjust ...func(*server.Options)) *storeEnv {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	se := &storeEnv{store: &flakyStore{Store: vault.NewMemStore()}}
	e := &env{identity: id, clock: &clock{now: serverEpoch}, logs: &syncBuffer{}, clients: map[string]testClient{}}
	se.env = e
	key, err := token.GenerateSigningKey(token.ES256, serverEpoch)
	if err != nil {
		t.Fatal(err)
	}
	day := []vault.Limit{{Count: 1000, Period: "day"}}
	e.vault, err = vault.CreateIn(se.store, "memory", vault.CreateOptions{
		Recipients: []age.Recipient{id.Recipient()},
		Settings:   vault.Settings{KeyPrefix: "km", ClientSecretPrefix: "kmcs"},
		Options:    vault.Options{Now: e.clock.Now},
		Setup: func(tx *vault.Tx) error {
			if err := tx.AddSigningKey(token.ToVault(key), 30*24*time.Hour); err != nil {
				return err
			}
			c := vault.Client{Credential: vault.Credential{Name: "metered", Scopes: []string{"api:read"}, Limits: day},
				GrantTypes: []string{token.GrantClientCredentials}, TokenTTL: time.Hour}
			secret := e.newSecret(t)
			if err := tx.CreateClient(&c, secret); err != nil {
				return err
			}
			se.metered = testClient{id: c.ID, secret: secret}
			e.clients["metered"] = se.metered
			return nil
		},
	})
	if err != nil {
		t.Fatalf("create vault: %v", err)
	}
	se.meterKey = e.addKey(t, nil, vault.Key{Credential: vault.Credential{Name: "meter", Scopes: []string{"api:read"}, Limits: day}})
	opts := server.Options{
		Vault:          e.vault,
		Issuer:         testIssuer,
		Logger:         slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:            e.clock.Now,
		ReloadInterval: storeEnvInterval,
	}
	for _, f := range adjust {
		f(&opts)
	}
	e.srv, err = server.New(opts)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	return se
}

// stop ends the server as Run does when its context ends: last uses
// written, unused leased uses given back.
func (se *storeEnv) stop(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := se.srv.Run(ctx); err != nil {
		t.Fatalf("stopping the server: %v", err)
	}
}

// openAgain is another Vault on the same store, as another replica's.
func (se *storeEnv) openAgain(t testing.TB) *vault.Vault {
	t.Helper()
	v, err := vault.OpenStore(se.store, "memory", vault.Options{Identities: []age.Identity{se.identity}, Now: se.clock.Now})
	if err != nil {
		t.Fatalf("open the store again: %v", err)
	}
	return v
}

// ready returns /readyz's status, body and Retry-After.
func (e *env) ready(t testing.TB) (int, map[string]string, string) {
	t.Helper()
	w := e.do(t, request{method: http.MethodGet, path: "/readyz"})
	if got := w.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("/readyz Cache-Control %q", got)
	}
	var body map[string]string
	decodeJSON(t, w.Body.Bytes(), &body)
	return w.Code, body, w.Header().Get("Retry-After")
}
