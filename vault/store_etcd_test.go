package vault

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"filippo.io/age"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/keymint/keymint/apikey"
	"github.com/keymint/keymint/vault/etcdtest"
)

// sharedEtcd is the one-member cluster that the conformance suite and most
// etcd tests share, each store under its own random prefix: starting etcd
// for every subtest would be too slow. It starts on first use and
// TestMain stops it.
type sharedEtcd struct {
	once    sync.Once
	dir     string
	cluster *etcdtest.Cluster
	err     error
}

func (s *sharedEtcd) get(t testing.TB) *etcdtest.Cluster {
	t.Helper()
	s.once.Do(func() {
		if s.dir, s.err = os.MkdirTemp("", "keymint-etcd-"); s.err != nil {
			return
		}
		s.cluster, s.err = etcdtest.StartCluster(s.dir, 1)
	})
	if s.err != nil {
		t.Fatalf("shared etcd: %v", s.err)
	}
	return s.cluster
}

func (s *sharedEtcd) stop() {
	if s.cluster != nil {
		s.cluster.Stop()
	}
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
}

// testEtcd is test-binary state by necessity: one cluster outlives every
// test that uses it.
var testEtcd sharedEtcd

func TestMain(m *testing.M) {
	code := m.Run()
	testEtcd.stop()
	os.Exit(code)
}

// testEtcdConfig is a configuration for endpoints with the test cluster's
// raised transaction limits, under a fresh random prefix.
func testEtcdConfig(endpoints []string) EtcdConfig {
	return EtcdConfig{
		Endpoints:       endpoints,
		Prefix:          "/test-" + rand.Text()[:12],
		Timeout:         5 * time.Second,
		MaxTxnOps:       etcdtest.MaxTxnOps,
		MaxRequestBytes: etcdtest.MaxRequestBytes,
	}
}

// openTestEtcd opens a store on cfg, closed when t ends.
func openTestEtcd(t testing.TB, cfg EtcdConfig) *EtcdStore {
	t.Helper()
	s, err := OpenEtcdStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// newTestEtcdStore is a store under a fresh prefix of the shared cluster.
func newTestEtcdStore(t testing.TB) *EtcdStore {
	t.Helper()
	return openTestEtcd(t, testEtcdConfig(testEtcd.get(t).Endpoints()))
}

// rawEtcd is a plain etcd client, as an operator's etcdctl would be.
func rawEtcd(t testing.TB, endpoints []string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func counterUpdate(tx WriteTx) error {
	v, err := tx.Get("c", []byte("n"))
	if err != nil {
		return err
	}
	var n uint64
	if v != nil {
		n = binary.BigEndian.Uint64(v)
	}
	return tx.Put("c", []byte("n"), binary.BigEndian.AppendUint64(nil, n+1))
}

func storeCounter(t testing.TB, s Store) uint64 {
	t.Helper()
	var n uint64
	if err := s.View(func(tx ReadTx) error {
		v, err := tx.Get("c", []byte("n"))
		if v != nil {
			n = binary.BigEndian.Uint64(v)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestEtcdConflict: of two Updates that read the same key at the same
// revision and both write it, exactly one commits and the other writes
// nothing and reports ErrConflict; a commit landing between another
// Update's ranged read and its commit (a deletion, which no per-key check
// of the keys read would see) conflicts too.
func TestEtcdConflict(t *testing.T) {
	cfg := testEtcdConfig(testEtcd.get(t).Endpoints())
	a, b := openTestEtcd(t, cfg), openTestEtcd(t, cfg)

	var read sync.WaitGroup
	read.Add(2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, s := range []*EtcdStore{a, b} {
		wg.Go(func() {
			errs[i] = s.Update(func(tx WriteTx) error {
				if _, err := tx.Get("c", []byte("n")); err != nil {
					read.Done()
					return err
				}
				read.Done()
				read.Wait() // both have read before either commits
				return tx.Put("c", []byte("n"), fmt.Appendf(nil, "from %d", i))
			})
		})
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, ErrConflict):
			t.Errorf("losing Update = %v, want ErrConflict", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d of 2 racing Updates committed (%v), want exactly 1", won, errs)
	}

	mustUpdate(t, a, func(tx WriteTx) error { return tx.Put("r", []byte("x"), []byte("1")) })
	err := a.Update(func(tx WriteTx) error {
		n := 0
		if err := tx.Range("r", nil, nil, func(k, v []byte) error { n++; return nil }); err != nil {
			return err
		}
		mustUpdate(t, b, func(tx WriteTx) error { return tx.Delete("r", []byte("x")) })
		return tx.Put("count", []byte("r"), fmt.Append(nil, n))
	})
	if !errors.Is(err, ErrConflict) {
		t.Errorf("commit after a concurrent delete in its range = %v, want ErrConflict", err)
	}
	if v := storeGet(t, a, "count", "r"); v != nil {
		t.Errorf("the conflicting Update wrote %q", v)
	}
}

// TestEtcdViewOneRevision: a View reads one state even while another
// process commits, and says which revision that is.
func TestEtcdViewOneRevision(t *testing.T) {
	cfg := testEtcdConfig(testEtcd.get(t).Endpoints())
	a, b := openTestEtcd(t, cfg), openTestEtcd(t, cfg)
	mustUpdate(t, a, func(tx WriteTx) error { return tx.Put("b", []byte("k"), []byte("old")) })
	if err := a.View(func(tx ReadTx) error {
		first, err := tx.Get("b", []byte("k"))
		if err != nil {
			return err
		}
		mustUpdate(t, b, func(tx WriteTx) error {
			if err := tx.Put("b", []byte("k"), []byte("new")); err != nil {
				return err
			}
			return tx.Put("b", []byte("k2"), []byte("new"))
		})
		again, err := tx.Get("b", []byte("k"))
		if err != nil {
			return err
		}
		var keys []string
		if err := tx.Range("b", nil, nil, func(k, v []byte) error { keys = append(keys, string(k)); return nil }); err != nil {
			return err
		}
		if string(first) != "old" || string(again) != "old" || fmt.Sprint(keys) != "[k]" {
			t.Errorf("one View read %q, then %q and keys %q: want old, old, [k]", first, again, keys)
		}
		rev, err := tx.(interface{ Revision() (int64, error) }).Revision()
		if err != nil || rev == 0 {
			t.Errorf("Revision() = %d, %v", rev, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if v := storeGet(t, a, "b", "k"); string(v) != "new" {
		t.Errorf("a later View reads %q, want new", v)
	}
}

// TestEtcdRangeMergesWrites: an Update's Range sees its own puts and
// deletes merged in key order with what is stored, across etcd pages, as
// the memory store does.
func TestEtcdRangeMergesWrites(t *testing.T) {
	stores := []Store{newTestEtcdStore(t), NewMemStore()}
	key := func(i int) []byte { return binary.BigEndian.AppendUint16([]byte("k"), uint16(i)) }
	var got [2][]string
	for si, s := range stores {
		mustUpdate(t, s, func(tx WriteTx) error {
			for i := 0; i < 3*rangePage; i += 2 {
				if err := tx.Put("r", key(i), []byte("stored")); err != nil {
					return err
				}
			}
			return tx.Put("r2", []byte("k"), []byte("other bucket"))
		})
		err := s.Update(func(tx WriteTx) error {
			for i := 0; i < 3*rangePage; i += 3 {
				var err error
				if i%2 == 0 {
					err = tx.Delete("r", key(i))
				} else {
					err = tx.Put("r", key(i), []byte("own"))
				}
				if err != nil {
					return err
				}
			}
			if err := tx.Put("r", []byte("zzz"), nil); err != nil {
				return err
			}
			for _, bounds := range [][2][]byte{{nil, nil}, {key(100), key(400)}, {key(1), nil}} {
				if err := tx.Range("r", bounds[0], bounds[1], func(k, v []byte) error {
					got[si] = append(got[si], fmt.Sprintf("%x=%s", k, v))
					return nil
				}); err != nil {
					return err
				}
				got[si] = append(got[si], "|")
			}
			return errors.New("roll back")
		})
		if err == nil || err.Error() != "roll back" {
			t.Fatal(err)
		}
	}
	if !slices.Equal(got[0], got[1]) {
		t.Errorf("etcd Range inside an Update differs from the memory store's:\netcd %d entries, memory %d", len(got[0]), len(got[1]))
	}
	if len(got[0]) < 3*rangePage/2 {
		t.Errorf("only %d entries ranged", len(got[0]))
	}
}

// TestEtcdTxnTooLarge: a commit beyond the configured limits is refused
// before anything is sent, with an error that names the etcd flags; one
// within the (raised) limits commits thousands of keys at once.
func TestEtcdTxnTooLarge(t *testing.T) {
	cfg := testEtcdConfig(testEtcd.get(t).Endpoints())
	small := cfg
	small.MaxTxnOps = 10
	s := openTestEtcd(t, small)
	err := s.Update(func(tx WriteTx) error {
		for i := range 20 {
			if err := tx.Put("big", fmt.Append(nil, i), []byte("v")); err != nil {
				return err
			}
		}
		return nil
	})
	var tooLarge *EtcdTxnTooLargeError
	if !errors.As(err, &tooLarge) || !errors.Is(err, ErrTxnTooLarge) || tooLarge.Ops != 21 {
		t.Fatalf("Update of 21 operations with a limit of 10 = %v", err)
	}
	for _, want := range []string{"21 operations", "--max-txn-ops", "--max-request-bytes"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if v := storeGet(t, s, "big", "0"); v != nil {
		t.Error("a refused commit wrote")
	}

	big := openTestEtcd(t, cfg)
	mustUpdate(t, big, func(tx WriteTx) error {
		for i := range 5000 {
			if err := tx.Put("big", binary.BigEndian.AppendUint32(nil, uint32(i)), bytes.Repeat([]byte{'v'}, 200)); err != nil {
				return err
			}
		}
		return nil
	})
	n := 0
	if err := big.View(func(tx ReadTx) error {
		return tx.Range("big", nil, nil, func(k, v []byte) error { n++; return nil })
	}); err != nil || n != 5000 {
		t.Errorf("ranged %d keys of 5000 (%v)", n, err)
	}
}

// TestEtcdClosed: a closed store refuses transactions.
func TestEtcdClosed(t *testing.T) {
	s, err := OpenEtcdStore(testEtcdConfig(testEtcd.get(t).Endpoints()))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.View(func(ReadTx) error { return nil }); !errors.Is(err, ErrEtcdStoreClosed) {
		t.Errorf("View on a closed store = %v", err)
	}
}

// etcdTestVault creates a vault in s and returns it with the identity that
// opens it.
func etcdTestVault(t testing.TB, s *EtcdStore) (*Vault, *age.X25519Identity) {
	return etcdTestVaultIn(t, s)
}

func etcdTestVaultIn(t testing.TB, s Store) (*Vault, *age.X25519Identity) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	v, err := CreateIn(s, "test", CreateOptions{
		Recipients:     []age.Recipient{id.Recipient()},
		RecipientNames: []string{id.Recipient().String()},
		Settings:       Settings{KeyPrefix: "km", ClientSecretPrefix: "kmcs"},
		Options:        Options{Actor: "tester@host"},
	})
	if err != nil {
		t.Fatalf("CreateIn: %v", err)
	}
	return v, id
}

func openEtcdVault(t testing.TB, s *EtcdStore, id age.Identity) *Vault {
	t.Helper()
	v, err := OpenStore(s, s.String(), Options{Identities: []age.Identity{id}, Actor: "tester@host", StateDir: t.TempDir()})
	if err != nil {
		t.Fatalf("OpenStore: %v", err)
	}
	return v
}

func etcdSecret(t testing.TB, prefix string) string {
	t.Helper()
	s, err := apikey.Generate(prefix)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// etcdRecord is a credential created in a test, with everything about it
// that must stay out of etcd's clear keys and values.
type etcdRecord struct {
	name, secret, scope, description string
}

func createEtcdRecords(t testing.TB, v *Vault, n int) []etcdRecord {
	t.Helper()
	var recs []etcdRecord
	if err := v.Update(func(tx *Tx) error {
		for i := range n {
			r := etcdRecord{
				name:        fmt.Sprintf("payroll-export-%d-qzx", i),
				secret:      etcdSecret(t, "km"),
				scope:       fmt.Sprintf("ledger:read-qzx%d", i),
				description: fmt.Sprintf("nightly payroll export to bank qzx %d", i),
			}
			if err := tx.CreateKey(&Key{
				Credential:  Credential{Name: r.name, Scopes: []string{r.scope}},
				Description: r.description,
			}, r.secret); err != nil {
				return err
			}
			recs = append(recs, r)
		}
		c := etcdRecord{name: "billing-client-qzx", secret: etcdSecret(t, "kmcs"), scope: "invoices:write-qzx", description: "billing backend qzx"}
		recs = append(recs, c)
		return tx.CreateClient(&Client{
			Credential:  Credential{Name: c.name, Scopes: []string{c.scope}},
			GrantTypes:  []string{"client_credentials"},
			TokenTTL:    time.Hour,
			Description: c.description,
		}, c.secret)
	}); err != nil {
		t.Fatalf("create records: %v", err)
	}
	return recs
}

// TestEtcdVault: a real vault lives in etcd: created through one store,
// opened through another (another replica's client), its keys found by
// name and secret, and the whole state verified.
func TestEtcdVault(t *testing.T) {
	cfg := testEtcdConfig(testEtcd.get(t).Endpoints())
	v, id := etcdTestVault(t, openTestEtcd(t, cfg))
	recs := createEtcdRecords(t, v, 3)

	other := openEtcdVault(t, openTestEtcd(t, cfg), id)
	if err := other.View(func(tx *Tx) error {
		for _, r := range recs[:3] {
			byName, err := tx.Key(r.name)
			if err != nil {
				return fmt.Errorf("key %s: %w", r.name, err)
			}
			bySecret, err := tx.KeyBySecret(r.secret)
			if err != nil {
				return fmt.Errorf("key %s by secret: %w", r.name, err)
			}
			if byName.ID != bySecret.ID || byName.Description != r.description || !slices.Equal(byName.Scopes, []string{r.scope}) {
				return fmt.Errorf("key %s read back as %+v", r.name, byName)
			}
		}
		_, err := tx.ClientBySecret(recs[3].secret)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Verify(); err != nil {
		t.Errorf("Verify: %v", err)
	}
	// A second vault in the same store is refused.
	if _, err := CreateIn(openTestEtcd(t, cfg), "again", CreateOptions{Recipients: []age.Recipient{id.Recipient()}}); !errors.Is(err, ErrExists) {
		t.Errorf("CreateIn over an existing vault = %v, want ErrExists", err)
	}
}

// TestEtcdConcurrentUsage: eight replicas, each with its own client, count
// uses of one credential at once through the vault; conflicts are retried
// and not one use is lost or counted twice.
func TestEtcdConcurrentUsage(t *testing.T) {
	cfg := testEtcdConfig(testEtcd.get(t).Endpoints())
	v, id := etcdTestVault(t, openTestEtcd(t, cfg))
	recs := createEtcdRecords(t, v, 1)
	var keyID string
	if err := v.View(func(tx *Tx) error {
		k, err := tx.Key(recs[0].name)
		if k != nil {
			keyID = k.ID
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	const replicas, each = 8, 12
	period := []string{"2026-03"}
	var conflicts atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range replicas {
		s := openTestEtcd(t, cfg)
		rv := openEtcdVault(t, s, id)
		wg.Go(func() {
			for range each {
				for {
					err := rv.Update(func(tx *Tx) error { return tx.AddUsage(keyID, period, 1) })
					if errors.Is(err, ErrConflict) { // the vault's own retries ran out
						conflicts.Add(1)
						continue
					}
					if err != nil {
						t.Error(err)
					}
					break
				}
			}
		})
	}
	wg.Wait()
	var got UsageCount
	if err := v.View(func(tx *Tx) (err error) { got, err = tx.Usage(keyID, period[0]); return err }); err != nil {
		t.Fatal(err)
	}
	if got.Used != replicas*each {
		t.Errorf("used = %d after %d increments", got.Used, replicas*each)
	}
	t.Logf("%d increments from %d replicas in %v (%d exhausted retries)", replicas*each, replicas, time.Since(start), conflicts.Load())
	if _, err := v.Verify(); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

// TestEtcdOperatorDump: an operator who reads every key and value under
// the vault's prefix (etcdctl get --prefix) learns no credential's name,
// secret, scope or description.
func TestEtcdOperatorDump(t *testing.T) {
	cluster := testEtcd.get(t)
	cfg := testEtcdConfig(cluster.Endpoints())
	v, _ := etcdTestVault(t, openTestEtcd(t, cfg))
	recs := createEtcdRecords(t, v, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := rawEtcd(t, cluster.Endpoints()).Get(ctx, cfg.Prefix+"/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) < 10 {
		t.Fatalf("only %d keys under the prefix", len(resp.Kvs))
	}
	for _, kv := range resp.Kvs {
		for _, r := range recs {
			for _, s := range []string{r.name, r.secret, r.scope, r.description, "qzx"} {
				for _, form := range []string{s, hex.EncodeToString([]byte(s))} {
					if bytes.Contains(kv.Key, []byte(form)) || bytes.Contains(kv.Value, []byte(form)) {
						t.Errorf("etcd key %q or its value holds %q", kv.Key, s)
					}
				}
			}
		}
	}
	t.Logf("%d keys under %s, none revealing a credential", len(resp.Kvs), cfg.Prefix)
}

// TestEtcdMemberKilled: with one member of three killed by SIGKILL (the
// leader, the worst case) while commits run, every acknowledged commit is
// there afterwards, on every member.
func TestEtcdMemberKilled(t *testing.T) {
	cluster := etcdtest.Start(t, 3)
	cfg := testEtcdConfig(cluster.Endpoints())
	s := openTestEtcd(t, cfg)
	leader := etcdLeader(t, cluster.Endpoints())

	var acked, unknown atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			err := s.Update(counterUpdate)
			var ue *EtcdUnavailableError
			switch {
			case err == nil:
				acked.Add(1)
			case errors.As(err, &ue) && ue.CommitUnknown:
				unknown.Add(1)
			case errors.Is(err, ErrConflict), errors.As(err, &ue):
			default:
				t.Errorf("Update: %v", err)
				return
			}
		}
	})
	waitFor(t, func() bool { return acked.Load() >= 20 })
	cluster.Kill(leader)
	killedAt := acked.Load()
	waitFor(t, func() bool { return acked.Load() >= killedAt+20 })
	close(stop)
	wg.Wait()
	if err := cluster.Restart(leader); err != nil {
		t.Fatal(err)
	}
	// Every member, the restarted one included, holds every acknowledged
	// commit (a linearizable read through each).
	for i, ep := range cluster.Endpoints() {
		one := cfg
		one.Endpoints = []string{ep}
		n := storeCounter(t, openTestEtcd(t, one))
		if n < uint64(acked.Load()) || n > uint64(acked.Load()+unknown.Load()) {
			t.Errorf("member %d counts %d; %d commits acknowledged, %d of unknown outcome", i, n, acked.Load(), unknown.Load())
		}
	}
	t.Logf("%d commits acknowledged (%d after killing the leader, member %d), %d of unknown outcome",
		acked.Load(), acked.Load()-killedAt, leader, unknown.Load())
}

// etcdLeader returns the index of the cluster's leader.
func etcdLeader(t testing.TB, endpoints []string) int {
	t.Helper()
	cli := rawEtcd(t, endpoints)
	for i, ep := range endpoints {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		st, err := cli.Status(ctx, ep)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if st.Leader == st.Header.MemberId {
			return i
		}
	}
	t.Fatal("no leader")
	return -1
}

// waitFor waits up to 20s for cond.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestEtcdUnavailable: with every member stopped, View and Update fail
// within the configured timeout with an error naming the endpoints and
// never the password.
func TestEtcdUnavailable(t *testing.T) {
	cluster := etcdtest.Start(t, 1)
	cfg := testEtcdConfig(cluster.Endpoints())
	cfg.Timeout = time.Second
	cfg.Username, cfg.Password = "", ""
	s := openTestEtcd(t, cfg)
	mustUpdate(t, s, counterUpdate)
	cluster.Stop()

	for name, run := range map[string]func() error{
		"View":   func() error { return s.View(func(tx ReadTx) error { _, err := tx.Get("c", []byte("n")); return err }) },
		"Update": func() error { return s.Update(counterUpdate) },
		"Vault": func() error {
			_, err := OpenStore(s, s.String(), Options{Identities: []age.Identity{mustIdentity(t)}})
			return err
		},
	} {
		start := time.Now()
		err := run()
		took := time.Since(start)
		var ue *EtcdUnavailableError
		if !errors.As(err, &ue) || !slices.Equal(ue.Endpoints, cluster.Endpoints()) {
			t.Errorf("%s with the cluster down = %v, want EtcdUnavailableError", name, err)
			continue
		}
		if took > cfg.Timeout+2*time.Second {
			t.Errorf("%s took %v to fail, timeout %v", name, took, cfg.Timeout)
		}
		if !strings.Contains(err.Error(), cluster.Endpoints()[0]) || !strings.Contains(err.Error(), "none of") {
			t.Errorf("%s error %q does not name the endpoint", name, err)
		}
		t.Logf("%s failed after %v: %v", name, took, err)
	}

	// A password given never shows in an error or a printed configuration.
	withPass := cfg
	withPass.Username, withPass.Password = "keymint", "hunter2-do-not-print"
	withPass.DialTimeout = time.Second
	start := time.Now()
	ps, err := OpenEtcdStore(withPass)
	if err != nil {
		// With a user name the client fetches a token when it connects.
		var ue *EtcdUnavailableError
		if !errors.As(err, &ue) || time.Since(start) > withPass.DialTimeout+2*time.Second {
			t.Errorf("OpenEtcdStore with a password, cluster down = %v after %v", err, time.Since(start))
		}
		if strings.Contains(err.Error(), withPass.Password) {
			t.Errorf("error shows the password: %v", err)
		}
		return
	}
	defer ps.Close()
	err = ps.Update(counterUpdate)
	for _, s := range []string{fmt.Sprint(err), fmt.Sprint(withPass), fmt.Sprintf("%+v", withPass), fmt.Sprintf("%#v", withPass)} {
		if strings.Contains(s, withPass.Password) {
			t.Errorf("%q shows the password", s)
		}
	}
}

func mustIdentity(t testing.TB) *age.X25519Identity {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestEtcdWatch: a commit by another process reaches a watcher through
// etcd's watch within milliseconds; the watch survives its member
// restarting and closes when its context ends.
func TestEtcdWatch(t *testing.T) {
	cluster := etcdtest.Start(t, 1)
	cfg := testEtcdConfig(cluster.Endpoints())
	watcher, writer := openTestEtcd(t, cfg), openTestEtcd(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := watcher.Watch(ctx)

	commitAndWait := func(what string) {
		t.Helper()
		begun := time.Now()
		mustUpdate(t, writer, counterUpdate)
		committed := time.Now()
		select {
		case rev, ok := <-ch:
			if !ok {
				t.Fatalf("%s: watch closed", what)
			}
			// The watch event often arrives before the commit's own
			// answer: the latency is from the commit's start.
			took := time.Since(begun)
			t.Logf("%s: revision %d delivered %v after the commit began (commit took %v)", what, rev, took, committed.Sub(begun))
			if took > time.Second {
				t.Errorf("%s: delivery took %v, want well under a second", what, took)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no notification", what)
		}
	}
	for i := range 3 {
		commitAndWait(fmt.Sprintf("commit %d", i))
	}
	// An Update that writes nothing commits nothing and notifies no one.
	mustUpdate(t, writer, func(tx WriteTx) error { _, err := tx.Get("c", []byte("n")); return err })
	select {
	case rev := <-ch:
		t.Errorf("an Update without writes notified revision %d", rev)
	case <-time.After(200 * time.Millisecond):
	}

	cluster.Kill(0)
	if err := cluster.Restart(0); err != nil {
		t.Fatal(err)
	}
	commitAndWait("after a restart")

	cancel()
	select {
	case _, ok := <-ch:
		for ok {
			_, ok = <-ch
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the watch did not close when its context ended")
	}
}

// TestEtcdWatchCompacted: a watch that must resume from revisions etcd has
// compacted away starts over and delivers the current commit revision
// instead of stopping.
func TestEtcdWatchCompacted(t *testing.T) {
	cluster := testEtcd.get(t)
	s := openTestEtcd(t, testEtcdConfig(cluster.Endpoints()))
	for range 3 {
		mustUpdate(t, s, counterUpdate)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cli := rawEtcd(t, cluster.Endpoints())
	cur, err := cli.Get(ctx, s.commitKey())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(ctx, cur.Header.Revision); err != nil {
		t.Fatal(err)
	}
	out := make(chan int64, 1)
	done := make(chan struct{})
	go func() { defer close(done); s.watch(ctx, 1, out) }()
	select {
	case rev := <-out:
		if rev != cur.Kvs[0].ModRevision {
			t.Errorf("delivered %d after compaction, want the current commit revision %d", rev, cur.Kvs[0].ModRevision)
		}
	case <-ctx.Done():
		t.Fatal("no delivery after compaction")
	}
	cancel()
	<-done
}

// TestParseEtcdURL covers the accepted forms and the refusals.
func TestParseEtcdURL(t *testing.T) {
	for _, tt := range []struct {
		in        string
		endpoints []string
		prefix    string
		tls       bool
	}{
		{"etcd://10.0.0.1:2379,10.0.0.2:2379/keymint", []string{"10.0.0.1:2379", "10.0.0.2:2379"}, "/keymint", false},
		{"etcds://etcd.internal/prod/keymint/", []string{"etcd.internal:2379"}, "/prod/keymint", true},
		{"etcd://[::1]:2379,[fe80::1]", []string{"[::1]:2379", "[fe80::1]:2379"}, DefaultEtcdPrefix, false},
		{"ETCD://h:1/a%20b", []string{"h:1"}, "/a b", false},
	} {
		cfg, err := ParseEtcdURL(tt.in)
		if err != nil || !slices.Equal(cfg.Endpoints, tt.endpoints) || cfg.Prefix != tt.prefix || (cfg.TLS != nil) != tt.tls {
			t.Errorf("ParseEtcdURL(%q) = %v, %v", tt.in, cfg, err)
		}
	}
	for _, in := range []string{
		"etcd://root:s3cret-pw@10.0.0.1:2379/keymint",
		"etcd://:s3cret-pw@h/k",
		"http://h:2379/k", "h:2379", "etcd://", "etcd://h:2379,/k", "etcd://h:0/k", "etcd://h:99999/k",
		"etcd://h:x/k", "etcd://h/k?password=s3cret-pw", "etcd://h/k#s3cret-pw", "etcd://h/%zz", "etcd://[::1/k",
	} {
		cfg, err := ParseEtcdURL(in)
		if err == nil {
			t.Errorf("ParseEtcdURL(%q) = %v, want an error", in, cfg)
			continue
		}
		if strings.Contains(err.Error(), "s3cret-pw") {
			t.Errorf("ParseEtcdURL(%q) error shows the password: %v", in, err)
		}
	}
	if _, err := ParseEtcdURL("etcd://u:p@h/k"); !errors.Is(err, ErrEtcdURLCredentials) ||
		!strings.Contains(err.Error(), "settings or the environment") {
		t.Errorf("URL with credentials: %v", err)
	}
}

// FuzzParseEtcdURL: parsing never panics, never quotes a URL's user
// information in an error, and what it accepts formats back to itself.
func FuzzParseEtcdURL(f *testing.F) {
	for _, s := range []string{
		"etcd://10.0.0.1:2379,10.0.0.2:2379/keymint", "etcds://h/a%2Fb", "etcd://[::1]:1/x",
		"etcd://u:pw@h/k", "etcd://h:2379/k?x", "etcd://,/", "etcds://a,b,c:3/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cfg, err := ParseEtcdURL(s)
		if err != nil {
			if _, rest, ok := strings.Cut(s, "://"); ok {
				authority, _, _ := strings.Cut(rest, "/")
				if userinfo, _, ok := strings.Cut(authority, "@"); ok && len(userinfo) >= 6 &&
					strings.Contains(err.Error(), userinfo) && !strings.Contains(ErrEtcdURLCredentials.Error(), userinfo) {
					t.Errorf("error %q quotes the user information %q", err, userinfo)
				}
			}
			return
		}
		if len(cfg.Endpoints) == 0 || cfg.Prefix == "" {
			t.Fatalf("ParseEtcdURL(%q) = %v: no endpoints or prefix", s, cfg)
		}
		again, err := ParseEtcdURL(cfg.URL())
		if err != nil || !slices.Equal(again.Endpoints, cfg.Endpoints) || again.Prefix != cfg.Prefix || (again.TLS != nil) != (cfg.TLS != nil) {
			t.Errorf("ParseEtcdURL(%q) = %v, formatted %q, parsed again as %v (%v)", s, cfg, cfg.URL(), again, err)
		}
	})
}

// TestEtcdFailsFast: once a request found no member answering, requests
// in the next second fail at once instead of each waiting the timeout, and
// once the cluster is back the store works again by itself.
func TestEtcdFailsFast(t *testing.T) {
	cluster := etcdtest.Start(t, 1)
	cfg := testEtcdConfig(cluster.Endpoints())
	cfg.Timeout = 2 * time.Second
	s := openTestEtcd(t, cfg)
	mustUpdate(t, s, counterUpdate)
	cluster.Kill(0)

	read := func() error {
		return s.View(func(tx ReadTx) error { _, err := tx.Get("c", []byte("n")); return err })
	}
	start := time.Now()
	err := read()
	var ue *EtcdUnavailableError
	if !errors.As(err, &ue) {
		t.Fatalf("read with the member down: %v", err)
	}
	first := time.Since(start)
	start = time.Now()
	err = s.Update(counterUpdate)
	again := time.Since(start)
	if !errors.As(err, &ue) || !errors.Is(err, errRecentlyDown) || again > 200*time.Millisecond {
		t.Errorf("the next request: %v after %v, want the unavailable error at once", err, again)
	}
	t.Logf("first request failed after %v, the next after %v", first, again)

	if err := cluster.Restart(0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return read() == nil })
	mustUpdate(t, s, counterUpdate)
	if got := storeCounter(t, s); got != 2 {
		t.Errorf("counter %d after the cluster came back, want 2", got)
	}
}

// BenchmarkEtcdUsageCommit is what bounds replicas on etcd: the commit of
// a quota lease refill (usage counters, the tree nodes they touch and the
// head; about 17 KiB in 5 puts), one writer or several at once, as
// replicas refilling together are. Every commit rewrites the head, so
// concurrent ones conflict and run again: the figure is commits a second
// of the whole cluster, whatever the writers.
//
//	go test -run '^$' -bench EtcdUsageCommit -benchtime 3s ./vault/
func BenchmarkEtcdUsageCommit(b *testing.B) {
	for _, writers := range []int{1, 4} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			cfg := testEtcdConfig(testEtcd.get(b).Endpoints())
			s := openTestEtcd(b, cfg)
			v, id := etcdTestVault(b, s)
			recs := createEtcdRecords(b, v, 8)
			var keyID string
			if err := v.View(func(tx *Tx) error {
				k, err := tx.Key(recs[0].name)
				keyID = k.ID
				return err
			}); err != nil {
				b.Fatal(err)
			}
			vaults := make([]*Vault, writers)
			for i := range vaults {
				vaults[i] = openEtcdVault(b, openTestEtcd(b, cfg), id)
			}
			var next atomic.Int64
			b.ResetTimer()
			b.SetParallelism(max(1, writers/runtime.GOMAXPROCS(0)))
			b.RunParallel(func(pb *testing.PB) {
				w := vaults[int(next.Add(1)-1)%writers]
				for pb.Next() {
					if err := w.Update(func(tx *Tx) error { return tx.AddUsage(keyID, []string{"2026-12", "2026-12-01"}, 16) }); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
		})
	}
}

// TestEtcdTLSAndAuth: a cluster that requires TLS with client
// certificates, and then a user's password, is reached with the files and
// the user given in EtcdConfig (as keymint's etcd-* settings give them);
// without the client certificate, or with a wrong password, it is refused
// with an error that shows no password.
func TestEtcdTLSAndAuth(t *testing.T) {
	c := etcdtest.StartTLS(t, 1)
	files := c.TLS()
	cfg := testEtcdConfig(c.Endpoints())
	cfg.Timeout, cfg.DialTimeout = 2*time.Second, 2*time.Second
	cfg.CAFile, cfg.CertFile, cfg.KeyFile = files.CA, files.ClientCert, files.ClientKey
	s := openTestEtcd(t, cfg)
	v, id := etcdTestVault(t, s)
	createEtcdRecords(t, v, 2)
	if !strings.HasPrefix(s.String(), "etcd://") || !strings.HasPrefix(cfg.URL(), "etcds://") {
		t.Errorf("names: store %s, config %s", s.String(), cfg.URL())
	}

	noCert := cfg
	noCert.CertFile, noCert.KeyFile = "", ""
	if err := tryView(noCert); err == nil {
		t.Error("a client without a certificate reached a cluster that requires one")
	}

	// Turn on etcd's authentication: a root user with a password.
	const password = "correct-horse-etcd-7731"
	root := clientWith(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := root.UserAdd(ctx, "root", password); err != nil {
		t.Fatal(err)
	}
	if _, err := root.UserGrantRole(ctx, "root", "root"); err != nil {
		t.Fatal(err)
	}
	if _, err := root.AuthEnable(ctx); err != nil {
		t.Fatal(err)
	}
	withUser := cfg
	withUser.Username, withUser.Password = "root", password
	us := openTestEtcd(t, withUser)
	ov := openEtcdVault(t, us, id)
	if _, err := ov.Verify(); err != nil {
		t.Fatalf("the vault through TLS and a user: %v", err)
	}
	wrong := withUser
	wrong.Password = "not-the-password-5521"
	err := tryView(wrong)
	if err == nil {
		t.Fatal("a wrong password was let in")
	}
	if strings.Contains(err.Error(), wrong.Password) || strings.Contains(err.Error(), password) {
		t.Errorf("the error shows a password: %v", err)
	}
	t.Logf("wrong password: %v", err)
}

// tryView opens a store on cfg and reads once.
func tryView(cfg EtcdConfig) error {
	s, err := OpenEtcdStore(cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.View(func(tx ReadTx) error { _, err := tx.Get("c", []byte("n")); return err })
}

// clientWith is a plain etcd client on cfg's endpoints and TLS files.
func clientWith(t testing.TB, cfg EtcdConfig) *clientv3.Client {
	t.Helper()
	tc, err := cfg.tlsConfig()
	if err != nil {
		t.Fatal(err)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: cfg.Endpoints, TLS: tc, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// TestEtcdTamperAndRollback: someone who can write etcd's keyspace (an
// operator, a restored etcd snapshot) cannot replay a record's older value
// or put the whole keyspace back as it was: the head and the hash tree
// catch the first (ErrTampered), and this machine's remembered state the
// second (ErrRolledBack), as for the file vault.
func TestEtcdTamperAndRollback(t *testing.T) {
	cluster := testEtcd.get(t)
	cfg := testEtcdConfig(cluster.Endpoints())
	v, id := etcdTestVault(t, openTestEtcd(t, cfg))
	recs := createEtcdRecords(t, v, 3)
	raw := rawEtcd(t, cluster.Endpoints())
	dump := func() map[string][]byte {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := raw.Get(ctx, cfg.Prefix+"/", clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		m := map[string][]byte{}
		for _, kv := range resp.Kvs {
			m[string(kv.Key)] = kv.Value
		}
		return m
	}
	restore := func(m map[string][]byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := raw.Delete(ctx, cfg.Prefix+"/", clientv3.WithPrefix()); err != nil {
			t.Fatal(err)
		}
		for k, val := range m {
			if _, err := raw.Put(ctx, k, string(val)); err != nil {
				t.Fatal(err)
			}
		}
	}
	state := t.TempDir()
	open := func() (*Vault, error) {
		return OpenStore(openTestEtcd(t, cfg), "etcd", Options{Identities: []age.Identity{id}, StateDir: state})
	}
	ov, err := open()
	if err != nil {
		t.Fatal(err)
	}
	old := dump()
	// Changes after the copy was taken: a key removed, one disabled.
	if err := ov.Update(func(tx *Tx) error {
		if _, err := tx.DeleteKeys(recs[0].name); err != nil {
			return err
		}
		disabled := true
		_, _, err := tx.UpdateKey(recs[1].name, KeyUpdate{CredentialUpdate: CredentialUpdate{Disabled: &disabled}})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	now := dump()

	// One record's older value put back: the disabled key enabled again.
	var replayed int
	for k, val := range old {
		if cur, ok := now[k]; ok && !bytes.Equal(cur, val) && strings.Contains(k, "/b/"+hex.EncodeToString([]byte(bucketKeys))+"/") {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err := raw.Put(ctx, k, string(val))
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			replayed++
		}
	}
	if replayed == 0 {
		t.Fatal("no changed key record to replay")
	}
	err = ov.View(func(tx *Tx) error { _, err := tx.Key(recs[1].name); return err })
	if !errors.Is(err, ErrTampered) {
		t.Errorf("reading a replayed record: %v, want ErrTampered", err)
	}

	// The whole keyspace as it was: consistent in itself, but older than
	// what this machine saw.
	restore(old)
	if _, err := open(); !errors.Is(err, ErrRolledBack) {
		t.Errorf("opening the rolled-back keyspace: %v, want ErrRolledBack", err)
	}
	if err := ov.View(func(*Tx) error { return nil }); !errors.Is(err, ErrRolledBack) {
		t.Errorf("a vault open before the rollback: %v, want ErrRolledBack", err)
	}
	restore(now)
	if _, err := open(); err != nil {
		t.Errorf("the keyspace put back as it was last seen: %v", err)
	}
}
