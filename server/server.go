package server

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keymint/keymint/password"
	"github.com/keymint/keymint/quota"
	"github.com/keymint/keymint/server/authui"
	"github.com/keymint/keymint/token"
	"github.com/keymint/keymint/vault"
)

// Defaults of [Options].
const (
	DefaultReloadInterval = 500 * time.Millisecond
	DefaultFlushInterval  = time.Second
	DefaultMaxBodyBytes   = 64 << 10
)

// Options configure a [Server].
type Options struct {
	// Vault is where clients, signing keys and revocations come from. The
	// server keeps no transaction and no file open between its reads.
	Vault *vault.Vault
	// Issuer is the issuer identifier: an absolute http or https URL without
	// query or fragment. A trailing slash is dropped. Endpoints are published
	// as Issuer + "/token" and so on, while the handler serves them at the
	// root, so an issuer with a path needs a proxy that strips the path.
	Issuer string
	// Logger receives one line per request and the server's own events. It
	// never receives a secret, an Authorization header or a token. Nil
	// discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// ReloadInterval is how often the vault's generation is polled; a change
	// made by another process is served after at most this long plus one
	// reload. Zero means [DefaultReloadInterval].
	ReloadInterval time.Duration
	// FlushInterval is how often last_used_at is written back, in one
	// transaction for every client and API key used since the last write.
	// Zero means [DefaultFlushInterval].
	FlushInterval time.Duration
	// MaxBodyBytes caps a request body. Zero means [DefaultMaxBodyBytes].
	MaxBodyBytes int64
	// DevSignIn makes the sign-in page take any user name without a
	// password, creating the user on first sign-in: for serve --dev's
	// throwaway vault only. The page says so.
	DevSignIn bool
	// TrustedProxies are the gateways and proxies whose X-Forwarded-For
	// and X-Real-IP fields are believed. For a request from one of them,
	// the address that failed authentication is throttled by, and that the
	// log shows as remote, is the right-most address of X-Forwarded-For
	// that is not itself in TrustedProxies (the left-most if all are);
	// without X-Forwarded-For, or with an entry there that is not an
	// address, it is X-Real-IP, else the proxy's own. The fields of any
	// other caller are ignored, so that no client picks its own throttle
	// bucket. None by default: every caller is its TCP peer.
	TrustedProxies []netip.Prefix
	// Changes, when not nil, tells [Server.Run] that the vault may have
	// changed: each value (the etcd store's Watch delivers the revision of
	// every commit) makes Run poll the vault at once, besides every
	// ReloadInterval, so that a change made by another replica is served
	// within one reload. Values that arrive while a reload runs make one
	// more poll, not one each; a poll reloads only when the generation
	// moved, so usage-only commits cost one generation read. A closed
	// channel leaves the periodic poll alone.
	Changes <-chan int64
}

// Server is keymint's OAuth 2.0 authorization server for the
// client_credentials grant: the token, discovery, JWKS, introspection,
// revocation, health, readiness and metrics endpoints, and the API key
// check for gateways,
// GET /verify (and GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS on
// /verify/ and a path under it, for Envoy's ext_authz). It is an [http.Handler].
//
// Every token issued counts as one use of its client, and every key
// accepted by /verify as one use of the key (see package quota).
// Failed client authentication is throttled per remote address (IPv6 per
// /64): after a burst of failures, further failures from that address get
// 429 with Retry-After until its bucket refills, with no goroutine put to
// sleep. The credentials are checked first: the right secret is never
// refused by the throttle, from any address, so that someone who knows a
// client_id cannot lock the client out; and an unknown client_id is
// answered as a wrong secret is. Failed key checks (an unknown or retired
// key) drain the same per-address buckets, and a valid key always passes;
// behind a gateway, that address is the gateway's, unless the gateway is
// one of [Options.TrustedProxies], whose X-Forwarded-For then names
// the caller.
//
// It serves from an in-memory snapshot of the vault (clients, API keys by
// the HMAC of their secrets, the active signing key, the published key
// set, revoked token ids), read in one transaction. [Server.Run] keeps the
// snapshot fresh, reading after a change only the records that changed (see
// [Server.Reload]), and writes usage back; without Run the server still
// answers, from the snapshot taken by [New], but /readyz answers 503.
type Server struct {
	v              *vault.Vault
	issuer         string
	log            *slog.Logger
	clock          func() time.Time
	reloadInterval time.Duration
	flushInterval  time.Duration
	maxBody        int64
	endpoints      endpoints
	mux            *http.ServeMux
	throttle       *throttle
	trustedProxies []netip.Prefix
	// uses counts each token issued against the client's limits, from
	// blocks leased in the vault: exact across processes, without a vault
	// write per token.
	uses *quota.Leaser
	// decoy is compared with a secret given for an unknown client_id, or
	// with an API key that matches no key, so that such a request costs
	// what a wrong secret does.
	decoy vault.Credential

	snap atomic.Pointer[snapshot]
	// ioMu serialises the server's vault transactions that swap the
	// snapshot (reload, revocation) so that a swap never loses a change the
	// server made itself. Writing last use swaps nothing and does not take
	// it.
	ioMu sync.Mutex
	// lastPollErr is the last polling error logged, so that a vault that
	// stays unreadable is reported once rather than twice a second.
	lastPollErr string
	// vaultTrouble says why the last poll could not read the vault, for
	// /healthz; nil when it could (or before the first poll).
	vaultTrouble atomic.Pointer[string]
	reloads      reloadCounts
	// lastPoll is the outcome of the last poll, for /readyz; nil before
	// the first. reloadingTo is the generation a reload in progress is
	// reaching for, zero when none is.
	lastPoll    atomic.Pointer[pollResult]
	reloadingTo atomic.Uint64
	// changes is Options.Changes; notedAt is when (time.Now, in Unix
	// nanoseconds) the oldest change notification not yet followed by a
	// poll arrived, zero when none is waiting: the watch lag's start.
	changes <-chan int64
	notedAt atomic.Int64

	metrics        *metrics
	metricsHandler http.Handler

	usedMu sync.Mutex
	used   map[usedRef]struct{} // credentials used since the last flush

	// The authorization-code flow's browser side (authorize.go).
	auth
}

// auth is what the authorization endpoint and its pages need.
type auth struct {
	pages *authui.Renderer
	// flows, sessions and known seal the authorization request between
	// pages, the signed-in user's cookie and the known users' cookie,
	// under keys derived from the vault, so every replica opens them.
	flows, sessions, known *sealer
	csrfKey                []byte
	// userThrottle slows failed sign-ins per user (see signin.go).
	userThrottle *throttle
	// dummyHash is checked for an unknown user, as a password would be.
	// It is made on first need, not by New: an argon2id hash costs tens of
	// milliseconds, which a server start (and every test's) would pay for
	// a sign-in that may never come.
	dummyHash func() string
	// devSignIn is serve --dev's sign-in: any name, no password.
	devSignIn bool
	// secureCookies is set when the issuer is https.
	secureCookies bool
}

// usedRef names a credential whose last_used_at is due.
type usedRef struct {
	kind vault.Kind
	id   string
}

type endpoints struct {
	token, jwks, introspect, revoke string
}

// TokenPath is the path of the token endpoint.
const TokenPath = pathToken

// Paths of the endpoints the metadata names, and of the OpenID
// configuration, which handleMetadata tells from the other document.
const (
	pathToken         = "/token"
	pathJWKS          = "/jwks.json"
	pathIntrospect    = "/introspect"
	pathRevoke        = "/revoke"
	pathOAuthMetadata = "/.well-known/oauth-authorization-server"
	pathOIDCMetadata  = "/.well-known/openid-configuration"
	pathHealth        = "/healthz"
	pathReady         = "/readyz"
	pathMetrics       = "/metrics"
)

// Route is one endpoint of the server, as [Routes] lists it.
type Route struct {
	// Method is GET (which serves HEAD too), POST, or ANY for every method
	// the route serves.
	Method string
	// Path is the path served; PATH in it stands for any path.
	Path string
	// Summary says what the route is for, in a few words.
	Summary string
}

// route is a row of routeTable: a Route and its handler, nil for a route
// that [Server.ServeHTTP] answers before the mux.
type route struct {
	Route
	handle func(*Server, http.ResponseWriter, *http.Request)
}

// routeTable is the one list of the server's routes: the mux is built from
// it (see [Server.routes]), the log tells known paths by it, the metadata's
// URLs are its paths, and [Routes] gives it to `keymint serve --help`.
var routeTable = []route{
	{Route{http.MethodPost, pathToken, "access tokens: client_credentials, authorization_code (PKCE), refresh_token"}, (*Server).handleToken},
	{Route{http.MethodGet, pathAuthorize, "authorization endpoint: sign-in and consent pages (PKCE S256)"}, (*Server).handleAuthorize},
	{Route{http.MethodPost, pathAuthorize, "the same, parameters as a form"}, (*Server).handleAuthorize},
	{Route{http.MethodPost, pathSignIn, "the sign-in form"}, (*Server).handleSignIn},
	{Route{http.MethodPost, pathConsent, "the consent form"}, (*Server).handleConsent},
	{Route{http.MethodGet, pathUserInfo, "OpenID Connect UserInfo (also POST)"}, (*Server).handleUserInfo},
	{Route{http.MethodPost, pathUserInfo, "the same"}, (*Server).handleUserInfo},
	{Route{http.MethodGet, pathOAuthMetadata, "metadata (RFC 8414)"}, (*Server).handleMetadata},
	{Route{http.MethodGet, pathOIDCMetadata, "the same, for OpenID Connect libraries"}, (*Server).handleMetadata},
	{Route{http.MethodGet, pathJWKS, "the public signing keys"}, (*Server).handleJWKS},
	{Route{http.MethodPost, pathIntrospect, "token introspection (RFC 7662)"}, (*Server).handleIntrospect},
	{Route{http.MethodPost, pathRevoke, "token revocation (RFC 7009)"}, (*Server).handleRevoke},
	{Route{http.MethodGet, "/verify", "API key check for gateways (also HEAD)"}, (*Server).handleVerify},
	// Not through the mux: see ServeHTTP and serveVerifySubtree.
	{Route{"ANY", verifySubtree + "PATH", "the same, for Envoy ext_authz (any method)"}, nil},
	{Route{http.MethodGet, pathHealth, "liveness: 200, or 503 while the vault cannot be read"}, (*Server).handleHealth},
	{Route{http.MethodGet, pathReady, "readiness: 200 while the vault is read and served, else 503 and why; for the internal network"}, (*Server).handleReady},
	{Route{http.MethodGet, pathMetrics, "Prometheus metrics; unauthenticated: internal network only, not through a public proxy"}, (*Server).handleMetrics},
}

// Routes lists the server's endpoints, in the order its documentation
// gives them.
func Routes() []Route {
	out := make([]Route, len(routeTable))
	for i, r := range routeTable {
		out[i] = r.Route
	}
	return out
}

// knownPaths are the paths of the mux's routes, by which the log tells a
// known path asked with another method (405) from an unknown one.
var knownPaths = func() map[string]bool {
	m := map[string]bool{}
	for _, r := range routeTable {
		if r.handle != nil {
			m[r.Path] = true
		}
	}
	return m
}()

// newAuth sets up the authorization endpoint's pages, keys and throttle.
func (s *Server) newAuth(dev bool) error {
	pages, err := authui.New()
	if err != nil {
		return err
	}
	now := s.now
	a := auth{pages: pages, userThrottle: newThrottle(defaultUserThrottle), devSignIn: dev,
		secureCookies: strings.HasPrefix(s.issuer, "https:"), csrfKey: s.v.DerivedKey("csrf"),
		dummyHash: sync.OnceValue(func() string { return password.Dummy(password.Default) })}
	for _, sl := range []struct {
		to      **sealer
		purpose string
	}{{&a.flows, "flow"}, {&a.sessions, "session"}, {&a.known, "known users"}} {
		if *sl.to, err = newSealer(s.v.DerivedKey("sealer"), sl.purpose, now); err != nil {
			return err
		}
	}
	s.auth = a
	return nil
}

// routes builds the mux from routeTable.
func (s *Server) routes() {
	mux := http.NewServeMux()
	for _, r := range routeTable {
		if r.handle == nil {
			continue
		}
		handle := r.handle
		// A GET pattern serves HEAD too.
		mux.HandleFunc(r.Method+" "+r.Path, func(w http.ResponseWriter, req *http.Request) { handle(s, w, req) })
	}
	s.mux = mux
}

// snapshot is what the server knows of the vault at one generation. It is
// never modified once published; changes make a new one, which shares with
// it what they did not change: the record maps are layered (layered.go),
// and the signer, key set and documents are kept unless a signing key
// changed.
type snapshot struct {
	generation uint64
	clients    *layered[*vault.Client] // by client_id
	signer     *token.Signer
	keys       *token.KeySet
	revoked    *layered[struct{}] // by jti
	// apiKeys holds every API key under the HMAC of each of its secrets
	// (vault.MAC, as a string), retired ones included: /verify tells a
	// retired secret from a live one with vault.SecretMatches.
	apiKeys *layered[*verifyKey]
	// keysByID holds the same keys by id, so that a key read again can
	// have its old secrets dropped from apiKeys.
	keysByID *layered[*verifyKey]
	// staleAt is when the published key set changes without a vault write:
	// the end of a retired key's publication. Zero means never.
	staleAt time.Time
	// Responses that depend only on the snapshot, encoded once.
	jwks, oauthMetadata, oidcMetadata []byte
}

// New reads the vault and returns a server ready to serve. It fails if
// the issuer URL is not usable or the vault has no active signing key.
func New(opts Options) (*Server, error) {
	if opts.Vault == nil {
		return nil, errors.New("new server: no vault")
	}
	iss, err := token.CheckIssuer(opts.Issuer)
	if err != nil {
		return nil, fmt.Errorf("new server: %w", err)
	}
	proxies, err := normalizeProxies(opts.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("new server: %w", err)
	}
	s := &Server{
		v:              opts.Vault,
		issuer:         iss,
		log:            opts.Logger,
		clock:          opts.Now,
		reloadInterval: opts.ReloadInterval,
		flushInterval:  opts.FlushInterval,
		maxBody:        opts.MaxBodyBytes,
		endpoints: endpoints{
			token:      iss + pathToken,
			jwks:       iss + pathJWKS,
			introspect: iss + pathIntrospect,
			revoke:     iss + pathRevoke,
		},
		throttle:       newThrottle(defaultThrottle),
		trustedProxies: proxies,
		used:           map[usedRef]struct{}{},
		changes:        opts.Changes,
	}
	s.uses = quota.NewLeaser(opts.Vault, opts.Now)
	if err := s.newAuth(opts.DevSignIn); err != nil {
		return nil, fmt.Errorf("new server: %w", err)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	if s.reloadInterval <= 0 {
		s.reloadInterval = DefaultReloadInterval
	}
	if s.flushInterval <= 0 {
		s.flushInterval = DefaultFlushInterval
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	decoy := make([]byte, 32)
	_, _ = rand.Read(decoy) // crypto/rand.Read never fails
	s.decoy.Secrets = []vault.SecretHash{{MAC: decoy}}

	s.metrics = newMetrics(s)
	s.uses.Observe = s.metrics.leaseEvent
	s.metricsHandler = s.metrics.handler()
	snap, err := s.load()
	if err != nil {
		return nil, fmt.Errorf("new server: %w", err)
	}
	s.snap.Store(snap)
	s.metrics.generation.Set(float64(snap.generation))
	s.routes()
	return s, nil
}

// Issuer returns the issuer identifier the server mints tokens under.
func (s *Server) Issuer() string { return s.issuer }

func (s *Server) now() time.Time { return s.clock().UTC() }

func (s *Server) current() *snapshot { return s.snap.Load() }

// write runs fn in one vault transaction of the server's and then
// publishes the snapshot with change applied, so that what the server wrote
// is served at once. The snapshot keeps its generation: the next poll reads
// the server's own change back from the change log, a few point reads, and
// with it whatever else the transaction changed (such as revocations it
// pruned).
func (s *Server) write(fn func(*vault.Tx) error, change func(*snapshot)) error {
	s.ioMu.Lock()
	defer s.ioMu.Unlock()
	if err := s.v.Update(fn); err != nil {
		return err
	}
	next := *s.current()
	change(&next)
	s.snap.Store(&next)
	return nil
}

// markUsed notes a client's or key's use for the next group commit of
// last_used_at.
func (s *Server) markUsed(kind vault.Kind, id string) {
	ref := usedRef{kind, id}
	s.usedMu.Lock()
	s.used[ref] = struct{}{}
	s.usedMu.Unlock()
}

// Flush writes last_used_at for every client and key used since the last
// flush, in one transaction. On failure the uses are kept for the next
// attempt.
func (s *Server) Flush() error {
	s.usedMu.Lock()
	refs := s.used
	s.used = map[usedRef]struct{}{}
	s.usedMu.Unlock()
	if len(refs) == 0 {
		return nil
	}
	// Last use is usage data, no record change: it needs no snapshot swap,
	// so it does not take ioMu, and a reload never waits for it.
	err := s.v.Update(func(tx *vault.Tx) error {
		for ref := range refs {
			var err error
			if ref.kind == vault.KindKey {
				err = tx.TouchKey(ref.id)
			} else {
				err = tx.TouchClient(ref.id)
			}
			if errors.Is(err, vault.ErrNotFound) {
				continue // removed meanwhile
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.metrics.storeError(opFlush)
		s.usedMu.Lock()
		maps.Copy(s.used, refs)
		s.usedMu.Unlock()
		return fmt.Errorf("record last use of %d credential(s): %w", len(refs), err)
	}
	return nil
}

// Run keeps the server's snapshot in step with the vault, polling its
// generation at once, every ReloadInterval and whenever Options.Changes
// delivers a value, and every FlushInterval writes last_used_at and gives
// back the unused part of lapsed quota leases, until ctx is done. It then
// writes the last uses, gives back every unused leased use, and returns the
// errors of those final writes, if any. Stop the HTTP server before
// cancelling ctx: after Run returns, /token refuses to issue and /verify to
// accept keys (they can no longer count uses), and /readyz soon answers
// 503.
//
// Polls run on a goroutine of their own, one at a time: a tick or a change
// notification that comes while one runs makes one more, however many
// come. Requests never wait for a poll: the snapshot is swapped atomically.
func (s *Server) Run(ctx context.Context) error {
	kick := make(chan struct{}, 1)
	poke := func() {
		select {
		case kick <- struct{}{}:
		default: // a poll is already due: it will see this change too
		}
	}
	var background sync.WaitGroup
	// Polls, on a goroutine of their own.
	background.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-kick:
				s.poll()
			}
		}
	})
	// Writing last uses and giving back lapsed leases, on another: a
	// write that takes long (on etcd, conflict retries with other
	// replicas' writes) must never hold up the notice of a change.
	background.Go(func() {
		flush := time.NewTicker(s.flushInterval)
		defer flush.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-flush.C:
				if err := s.Flush(); err != nil {
					s.log.Warn("cannot write last_used_at; will retry", "err", err)
				}
				if err := s.uses.Flush(); err != nil {
					s.metrics.storeError(opGiveBack)
					s.log.Warn("cannot give back unused quota; will retry", "err", err)
				}
			}
		}
	})
	poke() // at once, for /readyz
	reload := time.NewTicker(s.reloadInterval)
	defer reload.Stop()
	changes := s.changes
	for {
		select {
		case <-ctx.Done():
			background.Wait()
			err := s.Flush()
			if gerr := s.uses.Close(); gerr != nil {
				s.metrics.storeError(opGiveBack)
				err = errors.Join(err, gerr)
			}
			return err
		case <-reload.C:
			poke()
		case _, ok := <-changes:
			if !ok {
				changes = nil // closed: the ticker goes on alone
				continue
			}
			s.notedAt.CompareAndSwap(0, time.Now().UnixNano())
			poke()
		}
	}
}

// revoke records a revocation in the vault and at once in the snapshot.
func (s *Server) revoke(r vault.Revocation) error {
	add := func(next *snapshot) {
		next.revoked = next.revoked.apply([]edit[struct{}]{{key: r.JTI}})
	}
	err := s.write(func(tx *vault.Tx) error { return tx.Revoke(r) }, add)
	if err != nil {
		s.metrics.storeError(opRevoke)
	}
	return err
}
