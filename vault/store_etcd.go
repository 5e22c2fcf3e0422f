package vault

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// EtcdStore is a [Store] in an etcd cluster, so that several keymint
// processes on several machines share one vault.
//
// # Layout
//
// Everything lives under one key prefix P (default "/keymint"):
//
//	P/b/<hex bucket>/<key>   a record: the raw key bytes after the slash
//	P/s/<hex bucket>         a bucket's sequence, 8 bytes big-endian
//	P/commit                 rewritten by every commit (see Conflicts)
//
// The bucket name is hex-encoded, so that one bucket's keys are one
// contiguous etcd range in byte order and no bucket's range holds another's
// keys: hex digits sort after '/', so "P/b/61/" and "P/b/6162/" cannot
// overlap. Values are stored as the vault hands them over: sealed, apart
// from the clear meta fields doc.go names.
//
// # Transactions
//
// A transaction reads at one etcd revision: its first read is a
// linearizable read of the latest state and fixes the revision, and every
// later read asks for that revision (clientv3.WithRev), so View sees one
// committed state. Update does the same, buffers its writes (its reads see
// them, Range merging them in key order) and commits them in one etcd Txn.
//
// # Conflicts
//
// Every committing Update also puts P/commit, and commits only if P/commit
// was not modified after the revision it read at; otherwise it writes
// nothing and returns [ErrConflict], and [Vault.Update] runs it again. So
// writers are totally ordered by P/commit and each one read the state right
// before its own commit: strictly serializable, as store.go asks. A
// store-wide key costs nothing in concurrency here, because the vault
// rewrites its head in every commit and so serializes writers by design;
// and comparing the revisions of the keys read instead would not catch a
// key added or deleted inside a ranged read. An Update that wrote nothing
// commits nothing; one that read nothing (blind writes) commits without the
// comparison, since there is nothing it could have read stale.
//
// # Size
//
// etcd refuses a Txn of more than --max-txn-ops operations (default 128)
// or --max-request-bytes (default 1.5 MiB), and a vault migration, rekey or
// copy writes thousands of keys in one transaction. Splitting a commit
// into several Txns would need a staging area made visible atomically, which
// every reader would have to understand. Instead the cluster's limits must
// be raised for such work, and a commit larger than the limits the store
// is configured with ([EtcdConfig.MaxTxnOps], [EtcdConfig.MaxRequestBytes],
// which default to etcd's defaults) fails with [*EtcdTxnTooLargeError]
// before anything is sent. Ordinary commits (a credential's use, an edit)
// write a few dozen keys.
//
// # Failures
//
// Every etcd request is bounded by [EtcdConfig.Timeout]; a cluster that
// does not answer in time gives [*EtcdUnavailableError]. A commit that
// fails that way may or may not have been applied (etcd may have committed
// it before the answer was lost); the error says so and is not a conflict,
// so [Vault.Update] does not run it again: a use is never spent twice,
// though it may be spent without an answer.
//
// Only keymint should write under the prefix: a write from elsewhere does
// not touch P/commit and so escapes the conflict check.
type EtcdStore struct {
	cli       *clientv3.Client
	endpoints []string
	prefix    string
	timeout   time.Duration
	maxOps    int
	maxBytes  int
	// ctx ends when the store is closed, ending every request and watch.
	ctx    context.Context
	cancel context.CancelFunc
	// down is when (Unix nanoseconds) a request last found no member
	// answering, zero once one answers again; until failFast after it,
	// requests fail at once instead of each waiting out the timeout.
	down atomic.Int64
}

// failFast is how long after a request found the cluster unreachable
// further requests fail at once with the same error, rather than each
// waiting the whole timeout: a server whose store is down answers 503 at
// once from what it has leased, instead of piling up requests for
// seconds. The first request after it tries the cluster again.
const failFast = time.Second

// checkUp fails at once while the cluster was found unreachable less than
// failFast ago.
func (s *EtcdStore) checkUp() error {
	down := s.down.Load()
	if down == 0 || time.Since(time.Unix(0, down)) >= failFast {
		return nil
	}
	return &EtcdUnavailableError{Endpoints: s.endpoints, Timeout: s.timeout, Err: errRecentlyDown}
}

// errRecentlyDown is the cause of an EtcdUnavailableError given without
// asking the cluster (see failFast).
var errRecentlyDown = errors.New("no member answered a request less than a second ago")

// EtcdConfig says how to reach an etcd cluster and where the vault lives in
// it. Credentials and TLS material come from settings or the environment,
// never from a URL ([ParseEtcdURL]).
type EtcdConfig struct {
	// Endpoints are the members' client addresses, host:port.
	Endpoints []string
	// Prefix is the key prefix under which the vault lives; empty means
	// [DefaultEtcdPrefix]. A trailing slash is ignored.
	Prefix string
	// TLS, if set, makes the connection TLS. CAFile, CertFile and KeyFile,
	// if set, are loaded into a copy of it (or a new one): a CA bundle to
	// verify the members with, and a client certificate.
	TLS                       *tls.Config
	CAFile, CertFile, KeyFile string
	// Username and Password authenticate to etcd, if its auth is on.
	Username, Password string
	// DialTimeout bounds fetching an auth token when connecting; default
	// [DefaultEtcdTimeout].
	DialTimeout time.Duration
	// Timeout bounds every request to etcd; default [DefaultEtcdTimeout].
	Timeout time.Duration
	// MaxTxnOps and MaxRequestBytes are the cluster's --max-txn-ops and
	// --max-request-bytes; default etcd's defaults, 128 and 1.5 MiB. A
	// commit beyond them fails before it is sent.
	MaxTxnOps, MaxRequestBytes int
}

// Defaults of [EtcdConfig].
const (
	DefaultEtcdPrefix          = "/keymint"
	DefaultEtcdTimeout         = 5 * time.Second
	DefaultEtcdMaxTxnOps       = 128
	DefaultEtcdMaxRequestBytes = 3 << 19 // 1.5 MiB
)

// String describes c without its password, so that printing a
// configuration never leaks it.
func (c EtcdConfig) String() string {
	pw := ""
	if c.Password != "" {
		pw = " password=<redacted>"
	}
	user := ""
	if c.Username != "" {
		user = " user=" + c.Username
	}
	return fmt.Sprintf("etcd %s prefix %q tls=%t%s%s", strings.Join(c.Endpoints, ","), c.Prefix,
		c.TLS != nil || c.CAFile != "" || c.CertFile != "", user, pw)
}

// GoString is String, for %#v.
func (c EtcdConfig) GoString() string { return c.String() }

// OpenEtcdStore connects to the etcd cluster cfg names. Connecting does
// not wait for the cluster, so an unreachable one shows in the first
// transaction as [*EtcdUnavailableError]; except with a Username, when the
// client fetches an auth token first, waiting up to DialTimeout.
func OpenEtcdStore(cfg EtcdConfig) (*EtcdStore, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("etcd store: no endpoints")
	}
	prefix := strings.TrimRight(cfg.Prefix, "/")
	if prefix == "" {
		prefix = DefaultEtcdPrefix
	}
	tlsConfig, err := cfg.tlsConfig()
	if err != nil {
		return nil, err
	}
	s := &EtcdStore{
		endpoints: slices.Clone(cfg.Endpoints),
		prefix:    prefix,
		timeout:   orDefault(cfg.Timeout, DefaultEtcdTimeout),
		maxOps:    orDefault(cfg.MaxTxnOps, DefaultEtcdMaxTxnOps),
		maxBytes:  orDefault(cfg.MaxRequestBytes, DefaultEtcdMaxRequestBytes),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	dialTimeout := orDefault(cfg.DialTimeout, DefaultEtcdTimeout)
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   s.endpoints,
		DialTimeout: dialTimeout,
		TLS:         tlsConfig,
		Username:    cfg.Username,
		Password:    cfg.Password,
		Context:     s.ctx,
		// The client's own limit on what it sends must not be what
		// refuses a commit the cluster's limits allow.
		MaxCallSendMsgSize: max(s.maxBytes+1<<20, 2<<20),
		// The client logs connection retries itself; the store reports
		// failures as errors instead.
		Logger: zap.NewNop(),
	})
	if err != nil {
		s.cancel()
		if unavailable(err) {
			return nil, &EtcdUnavailableError{Endpoints: s.endpoints, Timeout: dialTimeout, Err: err}
		}
		// The client's errors name endpoints and causes, never the
		// password.
		return nil, fmt.Errorf("etcd store %s: %w", strings.Join(s.endpoints, ","), err)
	}
	s.cli = cli
	return s, nil
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// tlsConfig returns the TLS configuration to connect with, or nil for a
// plain connection.
func (c EtcdConfig) tlsConfig() (*tls.Config, error) {
	if c.TLS == nil && c.CAFile == "" && c.CertFile == "" && c.KeyFile == "" {
		return nil, nil
	}
	t := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.TLS != nil {
		t = c.TLS.Clone()
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("etcd CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("etcd CA %s: no PEM certificate in it", c.CAFile)
		}
		t.RootCAs = pool
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return nil, errors.New("etcd client certificate: set both the certificate and the key file, or neither")
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("etcd client certificate: %w", err)
		}
		t.Certificates = []tls.Certificate{cert}
	}
	return t, nil
}

// Close ends every request and watch of the store and disconnects.
func (s *EtcdStore) Close() error {
	s.cancel()
	if err := s.cli.Close(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("close etcd client: %w", err)
	}
	return nil
}

// String names the store as a URL without credentials, for messages and
// as the name [OpenStore] remembers its state under.
func (s *EtcdStore) String() string {
	return "etcd://" + strings.Join(s.endpoints, ",") + s.prefix
}

// Key layout (see EtcdStore).

func (s *EtcdStore) bucketPrefix(bucket string) string {
	return s.prefix + "/b/" + hex.EncodeToString([]byte(bucket)) + "/"
}

func (s *EtcdStore) sequenceKey(bucket string) string {
	return s.prefix + "/s/" + hex.EncodeToString([]byte(bucket))
}

func (s *EtcdStore) commitKey() string { return s.prefix + "/commit" }

// View runs fn on the state committed when its first read happens.
func (s *EtcdStore) View(fn func(ReadTx) error) error {
	if err := s.open(); err != nil {
		return err
	}
	return fn(&etcdTx{s: s})
}

// Update runs fn and commits its writes in one etcd transaction if no
// other commit happened after the revision fn read at.
func (s *EtcdStore) Update(fn func(WriteTx) error) error {
	if err := s.open(); err != nil {
		return err
	}
	tx := &etcdTx{s: s, writes: map[string]etcdWrite{}}
	if err := fn(tx); err != nil {
		return err
	}
	if len(tx.writes) == 0 {
		return nil
	}
	return tx.commit()
}

// ErrEtcdStoreClosed reports a transaction on a closed [EtcdStore].
var ErrEtcdStoreClosed = errors.New("etcd store is closed")

func (s *EtcdStore) open() error {
	if s.ctx.Err() != nil {
		return ErrEtcdStoreClosed
	}
	return nil
}

// request returns the context for one etcd request.
func (s *EtcdStore) request() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.ctx, s.timeout)
}

// EtcdUnavailableError reports that no etcd member answered a request in
// time: the cluster is down, unreachable, or has lost its quorum.
type EtcdUnavailableError struct {
	// Endpoints are the addresses the client tried.
	Endpoints []string
	Timeout   time.Duration
	// CommitUnknown is set when the request was a commit: etcd may have
	// applied it before the answer was lost.
	CommitUnknown bool
	Err           error
}

func (e *EtcdUnavailableError) Error() string {
	if errors.Is(e.Err, errRecentlyDown) {
		return fmt.Sprintf("etcd unavailable: none of %s answered within %v less than a second ago; not asked again yet", strings.Join(e.Endpoints, ", "), e.Timeout)
	}
	msg := fmt.Sprintf("etcd unavailable: none of %s answered within %v", strings.Join(e.Endpoints, ", "), e.Timeout)
	if e.CommitUnknown {
		msg += "; the commit may or may not have been applied"
	}
	return msg + ": " + e.Err.Error()
}

func (e *EtcdUnavailableError) Unwrap() error { return e.Err }

// ErrTxnTooLarge is wrapped by [*EtcdTxnTooLargeError].
var ErrTxnTooLarge = errors.New("transaction too large for etcd")

// EtcdTxnTooLargeError reports a commit beyond the cluster's transaction
// limits. Nothing was written. It wraps [ErrTxnTooLarge].
type EtcdTxnTooLargeError struct {
	Ops, Bytes       int // the commit's operations and approximate size
	MaxOps, MaxBytes int // the limits the store was configured with
	// Err is etcd's refusal, if etcd refused it rather than the store.
	Err error
}

func (e *EtcdTxnTooLargeError) Error() string {
	msg := fmt.Sprintf("%v: the commit has %d operations (%d bytes), the limits are %d operations and %d bytes; "+
		"start etcd with larger --max-txn-ops and --max-request-bytes and configure the store's limits to match",
		ErrTxnTooLarge, e.Ops, e.Bytes, e.MaxOps, e.MaxBytes)
	if e.Err != nil {
		msg += " (etcd: " + e.Err.Error() + ")"
	}
	return msg
}

func (e *EtcdTxnTooLargeError) Unwrap() error { return ErrTxnTooLarge }

// requestError turns a failed etcd request into the store's errors.
func (s *EtcdStore) requestError(what string, err error, commit bool) error {
	switch {
	case s.ctx.Err() != nil:
		return fmt.Errorf("etcd %s: %w", what, ErrEtcdStoreClosed)
	case unavailable(err):
		s.down.Store(time.Now().UnixNano())
		return &EtcdUnavailableError{Endpoints: s.endpoints, Timeout: s.timeout, CommitUnknown: commit, Err: err}
	case errors.Is(err, rpctypes.ErrCompacted):
		// The revision the transaction read at is gone: the state moved on
		// while it ran. Running it again reads a new revision.
		return fmt.Errorf("etcd %s: read revision compacted: %w", what, ErrConflict)
	}
	return fmt.Errorf("etcd %s: %w", what, err)
}

// unavailable reports whether err means that no member answered in time,
// as opposed to a member refusing the request.
func unavailable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		return ee.Code() == codes.Unavailable || ee.Code() == codes.DeadlineExceeded
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return true
	}
	return false
}

// etcdTx is a transaction of an [EtcdStore]: the revision its reads are
// at, and, in Update, its buffered writes by etcd key.
type etcdTx struct {
	s *EtcdStore
	// rev is the revision every read is at, 0 until the first read.
	rev    int64
	writes map[string]etcdWrite // nil in View
	// meta is the meta bucket as stored at rev, read whole on its first
	// use: every vault transaction begins by reading five of its six keys
	// (the header and the head), one round trip instead of five.
	meta map[string][]byte
}

type etcdWrite struct {
	value   []byte
	deleted bool
}

// get reads key (or the range opts name) at the transaction's revision,
// fixing it on the first read.
func (t *etcdTx) get(key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	if t.rev != 0 {
		opts = append(opts, clientv3.WithRev(t.rev))
	}
	if err := t.s.checkUp(); err != nil {
		return nil, err
	}
	ctx, cancel := t.s.request()
	defer cancel()
	resp, err := t.s.cli.Get(ctx, key, opts...)
	if err != nil {
		return nil, t.s.requestError("read", err, false)
	}
	t.s.down.Store(0)
	if t.rev == 0 {
		t.rev = resp.Header.Revision
	}
	return resp, nil
}

// Revision returns the etcd revision of the state the transaction reads,
// fixing it now if nothing was read yet.
func (t *etcdTx) Revision() (int64, error) {
	if t.rev == 0 {
		if _, err := t.get(t.s.commitKey()); err != nil {
			return 0, err
		}
	}
	return t.rev, nil
}

// value returns the value at an etcd key: the transaction's own write, or
// what is stored.
func (t *etcdTx) value(key string) ([]byte, error) {
	if w, ok := t.writes[key]; ok {
		if w.deleted {
			return nil, nil
		}
		return append([]byte{}, w.value...), nil
	}
	if metaPrefix := t.s.bucketPrefix(bucketMeta); strings.HasPrefix(key, metaPrefix) {
		if t.meta == nil {
			resp, err := t.get(metaPrefix, clientv3.WithPrefix())
			if err != nil {
				return nil, err
			}
			t.meta = make(map[string][]byte, len(resp.Kvs))
			for _, kv := range resp.Kvs {
				t.meta[string(kv.Key)] = present(kv.Value)
			}
		}
		if v, ok := t.meta[key]; ok {
			return append([]byte{}, v...), nil
		}
		return nil, nil
	}
	resp, err := t.get(key)
	if err != nil || len(resp.Kvs) == 0 {
		return nil, err
	}
	return present(resp.Kvs[0].Value), nil
}

// present returns v, or an empty value for nil: etcd hands back an empty
// value as nil, and nil means absent.
func present(v []byte) []byte {
	if v == nil {
		return []byte{}
	}
	return v
}

func (t *etcdTx) Get(bucket string, key []byte) ([]byte, error) {
	return t.value(t.s.bucketPrefix(bucket) + string(key))
}

// rangePage is how many keys Range reads from etcd at a time.
const rangePage = 256

func (t *etcdTx) Range(bucket string, from, to []byte, fn func(k, v []byte) error) error {
	base := t.s.bucketPrefix(bucket)
	start, end := base+string(from), prefixEnd([]byte(base))
	if to != nil {
		end = []byte(base + string(to))
	}
	// The transaction's own writes in the range, sorted, taken before fn
	// runs: fn must not write, but a caller's bug must not change the walk.
	var pending []string
	for k := range t.writes {
		if k >= start && k < string(end) {
			pending = append(pending, k)
		}
	}
	slices.Sort(pending)
	emit := func(k string, v []byte) error { return fn([]byte(k[len(base):]), v) }
	// flush hands fn the pending writes before key (all of them if key is
	// empty) and reports whether key itself was overwritten.
	flush := func(key string) (bool, error) {
		for len(pending) > 0 && (key == "" || pending[0] <= key) {
			k := pending[0]
			pending = pending[1:]
			if w := t.writes[k]; !w.deleted {
				if err := emit(k, append([]byte{}, w.value...)); err != nil {
					return false, err
				}
			}
			if k == key {
				return true, nil
			}
		}
		return false, nil
	}
	for cursor := start; cursor < string(end); {
		resp, err := t.get(cursor, clientv3.WithRange(string(end)), clientv3.WithLimit(rangePage))
		if err != nil {
			return err
		}
		for _, kv := range resp.Kvs {
			overwritten, err := flush(string(kv.Key))
			if err != nil {
				return err
			}
			if !overwritten {
				if err := emit(string(kv.Key), present(kv.Value)); err != nil {
					return err
				}
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		cursor = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	_, err := flush("")
	return err
}

func (t *etcdTx) Sequence(bucket string) (uint64, error) {
	v, err := t.value(t.s.sequenceKey(bucket))
	if err != nil || v == nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("etcd store: sequence of %s is %d bytes, not 8", bucket, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

func (t *etcdTx) Put(bucket string, key, value []byte) error {
	if t.writes == nil {
		return errors.New("etcd store: put in a read-only transaction")
	}
	t.writes[t.s.bucketPrefix(bucket)+string(key)] = etcdWrite{value: append([]byte{}, value...)}
	return nil
}

func (t *etcdTx) Delete(bucket string, key []byte) error {
	if t.writes == nil {
		return errors.New("etcd store: delete in a read-only transaction")
	}
	t.writes[t.s.bucketPrefix(bucket)+string(key)] = etcdWrite{deleted: true}
	return nil
}

func (t *etcdTx) SetSequence(bucket string, seq uint64) error {
	if t.writes == nil {
		return errors.New("etcd store: sequence in a read-only transaction")
	}
	t.writes[t.s.sequenceKey(bucket)] = etcdWrite{value: binary.BigEndian.AppendUint64(nil, seq)}
	return nil
}

// Limits returns the most operations and bytes one commit may have: a copy
// into the store (copy.go) writes in commits of at most that.
func (s *EtcdStore) Limits() (ops, bytes int) {
	// One operation and its compare are the commit key's.
	return s.maxOps - 1, s.maxBytes - 2*(len(s.commitKey())+txnOpOverhead)
}

func (t *etcdTx) NextSequence(bucket string) (uint64, error) {
	if t.writes == nil {
		return 0, errors.New("etcd store: sequence in a read-only transaction")
	}
	n, err := t.Sequence(bucket)
	if err != nil {
		return 0, err
	}
	n++
	t.writes[t.s.sequenceKey(bucket)] = etcdWrite{value: binary.BigEndian.AppendUint64(nil, n)}
	return n, nil
}

// txnOpOverhead is a generous estimate of what one operation adds to a Txn
// request beyond its key and value (protobuf tags and lengths).
const txnOpOverhead = 32

// commit sends the buffered writes and the commit key in one etcd Txn,
// conditional on the commit key being unchanged since the read revision.
func (t *etcdTx) commit() error {
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range t.writes {
			if !yield(k) {
				return
			}
		}
	})
	ops := make([]clientv3.Op, 0, len(keys)+1)
	size := 0
	for _, k := range keys {
		w := t.writes[k]
		if w.deleted {
			ops = append(ops, clientv3.OpDelete(k))
		} else {
			ops = append(ops, clientv3.OpPut(k, string(w.value)))
		}
		size += len(k) + len(w.value) + txnOpOverhead
	}
	commitKey := t.s.commitKey()
	ops = append(ops, clientv3.OpPut(commitKey, ""))
	size += 2 * (len(commitKey) + txnOpOverhead) // the put and the compare
	if len(ops) > t.s.maxOps || size > t.s.maxBytes {
		return &EtcdTxnTooLargeError{Ops: len(ops), Bytes: size, MaxOps: t.s.maxOps, MaxBytes: t.s.maxBytes}
	}
	if err := t.s.checkUp(); err != nil {
		return err
	}
	ctx, cancel := t.s.request()
	defer cancel()
	txn := t.s.cli.Txn(ctx)
	if t.rev != 0 {
		// Unchanged since rev: modified at rev or before, or never (a
		// missing key compares as revision 0).
		txn = txn.If(clientv3.Compare(clientv3.ModRevision(commitKey), "<", t.rev+1))
	}
	resp, err := txn.Then(ops...).Commit()
	switch {
	case errors.Is(err, rpctypes.ErrTooManyOps), errors.Is(err, rpctypes.ErrRequestTooLarge):
		return &EtcdTxnTooLargeError{Ops: len(ops), Bytes: size, MaxOps: t.s.maxOps, MaxBytes: t.s.maxBytes, Err: err}
	case err != nil:
		return t.s.requestError("commit", err, true)
	case !resp.Succeeded:
		return fmt.Errorf("etcd store: another transaction committed after revision %d: %w", t.rev, ErrConflict)
	}
	return nil
}

// Watch delivers the revision of every commit to the store, by any
// process, from when Watch returns until ctx ends or the store is closed;
// then it closes the channel. It uses etcd's watch, not polling, so a
// commit is delivered within milliseconds. A slow reader misses nothing
// that matters: the channel holds the newest revision not yet received,
// replacing an older one. When the watch breaks (a member lost, the
// revisions it would resume from compacted) Watch watches again and
// delivers the commit key's current revision, so a reader that reloads on
// every value may reload once more than needed but never misses a commit.
func (s *EtcdStore) Watch(ctx context.Context) <-chan int64 {
	out := make(chan int64, 1)
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.ctx, cancel)
	// The starting revision is read before Watch returns, so that a commit
	// after it returns is never missed.
	next, _ := s.watchStart(ctx)
	go func() {
		defer close(out)
		defer stop()
		defer cancel()
		s.watch(ctx, next, out)
	}()
	return out
}

// watchStart reads the commit key and returns the revision to watch from:
// the one after the state just read. It returns 0 if etcd did not answer.
func (s *EtcdStore) watchStart(ctx context.Context) (next, commitRev int64) {
	rctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	resp, err := s.cli.Get(rctx, s.commitKey())
	if err != nil {
		return 0, 0
	}
	if len(resp.Kvs) > 0 {
		commitRev = resp.Kvs[0].ModRevision
	}
	return resp.Header.Revision + 1, commitRev
}

// watchRetry is how long the watch waits before watching again after it
// broke, so that an unreachable cluster is not hammered.
const watchRetry = 100 * time.Millisecond

func (s *EtcdStore) watch(ctx context.Context, next int64, out chan int64) {
	for ctx.Err() == nil {
		if next == 0 {
			// Continuity lost (or never had): start over from the
			// current state and deliver it, for the reader to reload.
			var rev int64
			if next, rev = s.watchStart(ctx); next == 0 {
				sleepCtx(ctx, watchRetry)
				continue
			}
			if rev != 0 {
				deliver(out, rev)
			}
		}
		// WithRequireLeader makes a member cut off from the cluster end
		// the watch, rather than keep it silently open.
		wch := s.cli.Watch(clientv3.WithRequireLeader(ctx), s.commitKey(), clientv3.WithRev(next))
		for resp := range wch {
			if resp.CompactRevision != 0 {
				next = 0
				break
			}
			if resp.Canceled {
				break
			}
			for _, ev := range resp.Events {
				deliver(out, ev.Kv.ModRevision)
				next = ev.Kv.ModRevision + 1
			}
		}
		if ctx.Err() == nil {
			// The channel closed or the watch was canceled: the revision
			// to resume from is kept unless compaction lost it.
			sleepCtx(ctx, watchRetry)
		}
	}
}

// deliver puts rev in out, replacing an older revision not yet received.
// Only the watch goroutine sends, so the second send cannot block.
func deliver(out chan int64, rev int64) {
	select {
	case out <- rev:
		return
	default:
	}
	select {
	case <-out:
	default:
	}
	out <- rev
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
