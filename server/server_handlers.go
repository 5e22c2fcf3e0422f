package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keymint/keymint/apikey"
	"github.com/keymint/keymint/quota"
	"github.com/keymint/keymint/token"
	"github.com/keymint/keymint/vault"
)

// requestLog collects what the log line of a request says beyond method,
// path and status. Handlers fill it; only values safe to log go in: never
// a secret, an Authorization header or a token.
type requestLog struct {
	clientID string // a client that exists, never an unchecked value
	keyID    string // an API key that exists, found by its secret
	code     string // the OAuth error code sent
	cause    error  // why, for the operator
	jti      string // a token's id, which is not the token
	// remote is the throttled unit of the client's address (see
	// Server.remote); forwarded says it came from X-Forwarded-For or
	// X-Real-IP, sent by a trusted proxy.
	remote    string
	forwarded bool
}

// exchange is one request as ServeHTTP serves it: the ResponseWriter the
// handlers write to, which remembers the status, and the request's log
// line. Handlers reach it from their ResponseWriter (see logOf) rather than
// from the request's context, which would copy the Request each time;
// exchanges are pooled, as one is needed per request.
type exchange struct {
	http.ResponseWriter
	status int
	log    requestLog
}

var exchanges = sync.Pool{New: func() any { return new(exchange) }}

func (x *exchange) WriteHeader(status int) {
	if x.status == 0 {
		x.status = status
	}
	x.ResponseWriter.WriteHeader(status)
}

func (x *exchange) Write(b []byte) (int, error) {
	if x.status == 0 {
		x.status = http.StatusOK
	}
	return x.ResponseWriter.Write(b)
}

func (x *exchange) Unwrap() http.ResponseWriter { return x.ResponseWriter }

// logOf returns the log line of the request whose response w writes: the
// exchange's, found through any writers wrapped around it, or a line of its
// own for a writer ServeHTTP did not make.
func logOf(w http.ResponseWriter) *requestLog {
	for {
		switch x := w.(type) {
		case *exchange:
			return &x.log
		case interface{ Unwrap() http.ResponseWriter }:
			w = x.Unwrap()
		default:
			return &requestLog{}
		}
	}
}

// ServeHTTP serves the endpoints and logs one line per request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	w.Header()["X-Content-Type-Options"] = nosniffValue
	// The cap is set here, on the server's own ResponseWriter, so that
	// net/http closes the connection of a client that sends too much.
	r.Body = http.MaxBytesReader(w, r.Body, s.maxBody)
	x := exchanges.Get().(*exchange)
	*x = exchange{ResponseWriter: w}
	info := &x.log
	info.remote, info.forwarded = s.remote(r)
	if strings.HasPrefix(r.URL.Path, verifySubtree) {
		// Not through the mux, which would redirect a path with . or ..
		// segments or repeated slashes: that is the gateway's request's
		// path, and a redirect would be taken for a refusal.
		s.serveVerifySubtree(x, r)
	} else {
		s.mux.ServeHTTP(x, r)
	}
	s.logRequest(r, x, time.Since(start))
	*x = exchange{} // holds nothing of this request while pooled
	exchanges.Put(x)
}

// logRequest writes the log line of request r, answered through x in d.
func (s *Server) logRequest(r *http.Request, x *exchange, d time.Duration) {
	info := &x.log
	// The route, never the raw path or query, which a confused client may
	// have put a secret or a token in.
	path := r.Pattern
	if path == "" {
		path = routeNone
		if knownPaths[r.URL.Path] {
			path = r.URL.Path // a known path with another method: 405
		}
	}
	s.metrics.route(path).observe(x.status, d)
	var buf [12]slog.Attr
	attrs := append(buf[:0],
		slog.String("method", r.Method),
		slog.String("path", path),
		slog.Int("status", x.status),
		slog.Duration("duration", d),
		slog.String("remote", info.remote),
	)
	if info.forwarded {
		attrs = append(attrs, slog.String("peer", addrKey(r.RemoteAddr)))
	}
	if info.clientID != "" {
		attrs = append(attrs, slog.String("client_id", info.clientID))
	}
	if info.keyID != "" {
		attrs = append(attrs, slog.String("key_id", info.keyID))
	}
	if info.jti != "" {
		attrs = append(attrs, slog.String("jti", info.jti))
	}
	if info.code != "" {
		attrs = append(attrs, slog.String("error", info.code))
	}
	if info.cause != nil {
		attrs = append(attrs, slog.String("cause", info.cause.Error()))
	}
	level := slog.LevelInfo
	switch {
	case r.Pattern == patternHealth || r.Pattern == patternReady || r.Pattern == patternMetrics:
		// Probes and scrapes, every few seconds. Even a 503: its cause,
		// the vault, is logged once by the poll.
		level = slog.LevelDebug
	case x.status >= 500:
		level = slog.LevelError
	}
	s.log.LogAttrs(r.Context(), level, "request", attrs...)
}

// Patterns of the probes and the scrape, which are logged at debug level.
const (
	patternHealth  = http.MethodGet + " " + pathHealth
	patternReady   = http.MethodGet + " " + pathReady
	patternMetrics = http.MethodGet + " " + pathMetrics
)

// fail sends an error response and notes it for the log.
func fail(w http.ResponseWriter, r *http.Request, e *oauthError) {
	info := logOf(w)
	info.code, info.cause = e.code, e.cause
	if e.cause == nil {
		info.cause = errors.New(e.description)
	}
	writeError(w, e)
}

// authenticate checks the request's client credentials against the
// snapshot, in constant time, and only then applies the failed-
// authentication throttle, to failures alone: the right secret is never
// refused by it, from any address. An unknown client_id and a wrong secret
// for a known one are answered alike (401 invalid_client, or 429 once the
// caller's address is throttled), so that the answer does not tell which
// client_ids exist; only the log tells them apart.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, form map[string][]string) (*vault.Client, *snapshot, *oauthError) {
	cred, e := clientCredentials(r.Header, form)
	if e != nil {
		return nil, nil, e
	}
	snap := s.current()
	now := s.now()
	c, known := snap.clients.get(cred.clientID)
	mac := s.v.MAC(cred.secret)
	if !known {
		vault.SecretMatches(&s.decoy, mac, now) // the same work as a wrong secret
		return nil, nil, s.authFailed(w, now, errUnknownClient)
	}
	logOf(w).clientID = c.ID
	switch err := vault.Usable(vault.KindClient, &c.Credential, mac, now); {
	case errors.Is(err, vault.ErrExpired):
		// The right secret of an expired client: no guess, nothing to
		// throttle.
		return nil, nil, clientAuthFailed(errClientExpired)
	case errors.Is(err, vault.ErrDisabled):
		// The right secret of a disabled client: no guess either.
		return nil, nil, clientDisabled()
	case err != nil:
		// A wrong or retired secret. A client with a legacy (imported,
		// maybe low-entropy) secret is throttled per client too.
		if e := s.authFailed(w, now, errWrongSecret); e.status == http.StatusTooManyRequests || !c.LegacySecret(now) {
			return nil, nil, e
		}
		if wait := s.throttle.fail(legacyClientKey(c.ID), now); wait > 0 {
			return nil, nil, authThrottled(wait, errWrongSecret)
		}
		return nil, nil, clientAuthFailed(errWrongSecret)
	}
	return c, snap, nil
}

// clientDisabled is the answer to a disabled client that proved itself
// (by its right secret, or as a public client by PKCE): 401
// invalid_client that says why, which only the client's holder learns.
func clientDisabled() *oauthError {
	return &oauthError{status: http.StatusUnauthorized, code: errInvalidClient,
		description: "this client is disabled", cause: errClientDisabled}
}

// errClientDisabled is the log's cause of [clientDisabled].
var errClientDisabled = errors.New("client is disabled")

// authFailed records a failed client authentication against the caller's
// address and returns its answer: 401 invalid_client within the address's
// allowance, else 429 with Retry-After. The answer depends on the address
// alone, never on the client_id (see throttle).
func (s *Server) authFailed(w http.ResponseWriter, now time.Time, cause error) *oauthError {
	wait := s.throttle.fail(logOf(w).remote, now)
	if wait == 0 {
		return clientAuthFailed(cause)
	}
	return authThrottled(wait, cause)
}

// authThrottled is the 429 of a throttled failed client authentication.
func authThrottled(wait time.Duration, cause error) *oauthError {
	return &oauthError{
		status:      http.StatusTooManyRequests,
		code:        errTemporarily,
		description: "too many failed client authentications; retry later",
		retryAfter:  retryAfterSeconds(wait),
		cause:       fmt.Errorf("failed-authentication throttle (%w)", cause),
	}
}

// retryAfterSeconds is a throttle's wait as a Retry-After value: whole
// seconds, at least one.
func retryAfterSeconds(wait time.Duration) int {
	return int(math.Ceil(max(wait.Seconds(), 1)))
}

// handleToken is the token endpoint (RFC 6749 §4.4, §5) for the
// client_credentials grant.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	form, e := readForm(r, s.maxBody)
	if e == nil {
		e = checkSingle(form, "grant_type", "scope", "client_id", "client_secret")
	}
	if e != nil {
		fail(w, r, e)
		return
	}
	grant := form.Get("grant_type")
	switch grant {
	case "":
		fail(w, r, badRequest("missing grant_type"))
		return
	case token.GrantAuthorizationCode, token.GrantRefreshToken:
		by := s.tokenByCode
		if grant == token.GrantRefreshToken {
			by = s.tokenByRefresh
		}
		if e := by(w, r, form); e != nil {
			fail(w, r, e)
			return
		}
		s.metrics.tokens[grant].Inc()
		return
	}
	c, snap, e := s.authenticate(w, r, form)
	if e != nil {
		fail(w, r, e)
		return
	}
	if grant != token.GrantClientCredentials {
		// The value is not echoed: error descriptions are restricted to
		// a safe character set (RFC 6749 §5.2).
		fail(w, r, &oauthError{status: http.StatusBadRequest, code: errUnsupportedGrantType,
			description: "the grant types are client_credentials, authorization_code and refresh_token"})
		return
	}
	scope, e := scopeParam(form.Get("scope"))
	if e == nil {
		var audience []string
		if audience, e = audienceParams(form); e == nil {
			e = s.mint(w, r, c, snap, token.Request{Scope: scope, Audience: audience})
		}
	}
	if e != nil {
		fail(w, r, e)
		return
	}
	s.metrics.tokens[token.GrantClientCredentials].Inc()
}

// mint issues c's token for req with [token.Issue], which checks req
// against what c allows, counts the use against c's limits with the
// server's lease (the RateLimit fields on the response when c has any, see
// writeRateLimit; 429 with Retry-After when one is reached) and signs; and
// writes the token response, RFC 6749 §5.1's members alone (see
// token.Response).
func (s *Server) mint(w http.ResponseWriter, r *http.Request, c *vault.Client, snap *snapshot, req token.Request) *oauthError {
	_, resp, e := s.issueAccess(w, c, snap, req)
	if e != nil {
		return e
	}
	noStore(w.Header())
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// issueAccess issues c's access token for req with [token.Issue] (see
// mint), for every grant: the RateLimit fields go on w, the refusal is
// returned.
func (s *Server) issueAccess(w http.ResponseWriter, c *vault.Client, snap *snapshot, req token.Request) (token.Claims, token.Response, *oauthError) {
	now := s.now()
	var d quota.Decision
	claims, resp, err := token.Issue(c, req, s.issuer, now, snap.signer, func() error {
		var err error
		if d, err = s.take(kindClient, &c.Credential); err == nil && !d.Allowed {
			err = errLimitReached
		}
		return err
	})
	if d.Limited {
		writeRateLimit(w.Header(), d, rateLimitPolicy(&c.Credential), now)
	}
	if e := issueRefusal(err, d, now); e != nil {
		if errors.Is(err, errLimitReached) {
			s.metrics.quotaRefusals[kindIndex(kindClient)].Inc()
		}
		return token.Claims{}, token.Response{}, e
	}
	s.markUsed(vault.KindClient, c.ID)
	logOf(w).jti = claims.ID
	return claims, resp, nil
}

// issueRefusal is the answer to a failed token.Issue; nil if it did not
// fail. d is the count's decision. token.Issue's errors quote the
// requested scope or audience, which is the caller's input and may be
// anything, a pasted secret included: the log gets a cause without it.
func issueRefusal(err error, d quota.Decision, now time.Time) *oauthError {
	var counted *token.CountError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errLimitReached):
		return &oauthError{status: http.StatusTooManyRequests, code: errQuotaExceeded,
			description: "this client's usage limit is reached; retry when its period resets",
			retryAfter:  quota.RetryAfter(d.Status, now),
			cause:       fmt.Errorf("%d/%s limit reached", d.Status.Limit, d.Status.Period)}
	case errors.Is(err, vault.ErrNotFound) && errors.As(err, &counted):
		return clientAuthFailed(errors.New("client removed meanwhile"))
	case errors.As(err, &counted):
		return &oauthError{status: http.StatusServiceUnavailable, code: errTemporarily,
			description: "cannot count this use now; retry", retryAfter: 1, cause: err}
	case errors.Is(err, vault.ErrExpired):
		return clientAuthFailed(errClientExpired)
	case errors.Is(err, vault.ErrDisabled):
		return clientDisabled()
	case errors.Is(err, token.ErrUnauthorizedClient):
		return &oauthError{status: http.StatusBadRequest, code: errUnauthorizedClient,
			description: "this client may not use this grant type", cause: token.ErrUnauthorizedClient}
	case errors.Is(err, token.ErrInvalidScope):
		return &oauthError{status: http.StatusBadRequest, code: errInvalidScope,
			description: "the requested scope is not allowed for this client", cause: token.ErrInvalidScope}
	case errors.Is(err, token.ErrInvalidRequest):
		// With no TTL requested, only the audience can be refused.
		return &oauthError{status: http.StatusBadRequest, code: errInvalidTarget,
			description: "the requested audience is not allowed for this client",
			cause:       errors.New("requested audience is not among the client's")}
	default:
		return &oauthError{status: http.StatusInternalServerError, code: errServerError,
			description: "cannot issue a token now", cause: err}
	}
}

// take counts one use of credential c, of kind kindClient or kindAPIKey,
// with the server's quota leases, and counts in the metrics a use that
// waited for a lease to be reserved in the vault, and a vault that could
// not be written. A use from a lease held costs no vault transaction, and
// goes on while the vault is unreachable; one that needs a new lease then
// fails, and the caller answers 503 with Retry-After: uses are never
// granted uncounted.
func (s *Server) take(kind string, c *vault.Credential) (quota.Decision, error) {
	start := time.Now()
	d, err := s.uses.Take(c)
	if time.Since(start) > leaseWaitThreshold {
		s.metrics.leaseWaits[kindIndex(kind)].Inc()
	}
	if err != nil && !errors.Is(err, vault.ErrNotFound) {
		s.metrics.storeError(opLease)
	}
	return d, err
}

// errLimitReached is what mint's count step returns for a use its lease
// refused, over a limit.
var errLimitReached = errors.New("usage limit reached")

// introspection is an RFC 7662 §2.2 response.
type introspection struct {
	Active    bool   `json:"active"`
	Scope     string `json:"scope,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	TokenType string `json:"token_type,omitempty"`
	Exp       int64  `json:"exp,omitempty"`
	Iat       int64  `json:"iat,omitempty"`
	Sub       string `json:"sub,omitempty"`
	Aud       any    `json:"aud,omitempty"` // a string when one, else an array
	Iss       string `json:"iss,omitempty"`
	JTI       string `json:"jti,omitempty"`
}

// activeClaims returns a token's claims if it is active at now, as
// [token.CheckActive] decides with the snapshot's key set, revocations and
// clients. The error says why not, for the log; it never quotes the token.
func (s *Server) activeClaims(snap *snapshot, accessToken string, now time.Time) (token.Claims, error) {
	return token.CheckActive(snap.keys, accessToken, token.ActiveContext{
		Issuer:  s.issuer,
		Now:     now,
		Revoked: func(jti string) (bool, error) { return snap.revoked.has(jti), nil },
		Client: func(id string) (*vault.Client, error) {
			if c, ok := snap.clients.get(id); ok {
				return c, nil
			}
			return nil, fmt.Errorf("client %s: %w", id, vault.ErrNotFound)
		},
		// Grants and users are not in the snapshot: a token a client got
		// for a user costs a read of the vault (only those tokens do).
		Grant: func(userID, clientID string) (g *vault.Grant, err error) {
			err = s.v.View(func(tx *vault.Tx) error {
				g, err = tx.StandingGrant(userID, clientID)
				return err
			})
			return g, err
		},
	})
}

// tokenRequest reads what /introspect and /revoke share: a form with one
// token (and optionally a token_type_hint) from an authenticated client. It
// answers the request itself, and reports false, when that fails.
//
// A public client is authenticated by its client_id alone for /revoke
// (allowPublic), as it may revoke what it holds, never for /introspect.
func (s *Server) tokenRequest(w http.ResponseWriter, r *http.Request, allowPublic bool) (token string, c *vault.Client, snap *snapshot, ok bool) {
	form, e := readForm(r, s.maxBody)
	if e == nil {
		e = checkSingle(form, "token", "token_type_hint", "client_id", "client_secret")
	}
	if e == nil && form.Get("token") == "" {
		e = badRequest("missing token")
	}
	switch {
	case e == nil && allowPublic:
		c, snap, e = s.authenticateAny(w, r, form)
	case e == nil:
		c, snap, e = s.authenticate(w, r, form)
	}
	if e != nil {
		fail(w, r, e)
		return "", nil, nil, false
	}
	noStore(w.Header())
	return form.Get("token"), c, snap, true
}

// handleIntrospect is the introspection endpoint (RFC 7662). Any client may
// introspect any token, as a resource server that is a client must; a
// token that is not valid for any reason is just inactive.
func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	token, _, snap, ok := s.tokenRequest(w, r, false)
	if !ok {
		return
	}
	claims, err := s.activeClaims(snap, token, s.now())
	if err != nil {
		logOf(w).cause = err
		writeJSON(w, http.StatusOK, introspection{Active: false})
		return
	}
	logOf(w).jti = claims.ID
	resp := introspection{
		Active:    true,
		Scope:     strings.Join(claims.Scope, " "),
		ClientID:  claims.ClientID,
		TokenType: "Bearer",
		Exp:       claims.ExpiresAt.Unix(),
		Iat:       claims.IssuedAt.Unix(),
		Sub:       claims.Subject,
		Iss:       claims.Issuer,
		JTI:       claims.ID,
	}
	if len(claims.Audience) == 1 {
		resp.Aud = claims.Audience[0]
	} else {
		resp.Aud = claims.Audience
	}
	writeJSON(w, http.StatusOK, resp)
}

// handleRevoke is the revocation endpoint (RFC 7009). A client revokes its
// own tokens: an access token, or a refresh token, which ends its family;
// a token that is not active (invalid, expired, of another issuer, already
// revoked, or of a removed client) needs no revoking, and gets 200 like a
// revoked one (RFC 7009 §2.2).
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	token, c, snap, ok := s.tokenRequest(w, r, true)
	if !ok {
		return
	}
	if _, err := apikey.Parse(token); err == nil {
		// keymint's secret format: a refresh token, or nothing to revoke.
		s.revokeRefresh(w, r, c, token)
		return
	}
	// Only an active token needs revoking, as token.CheckActive decides
	// for /introspect and token verify alike.
	claims, err := s.activeClaims(snap, token, s.now())
	if err != nil {
		logOf(w).cause = err
		w.WriteHeader(http.StatusOK)
		return
	}
	logOf(w).jti = claims.ID
	if claims.ClientID != c.ID {
		fail(w, r, &oauthError{status: http.StatusBadRequest, code: errUnauthorizedClient,
			description: "the token was not issued to this client", cause: errors.New("token of another client")})
		return
	}
	err = s.revoke(vault.Revocation{JTI: claims.ID, ClientID: claims.ClientID, ExpiresAt: claims.ExpiresAt})
	if err != nil {
		fail(w, r, &oauthError{status: http.StatusServiceUnavailable, code: errTemporarily,
			description: "cannot record the revocation now; retry", retryAfter: 1, cause: err})
		return
	}
	w.WriteHeader(http.StatusOK)
}

// revokeRefresh ends the family of refresh token tok, if it is a current
// one of c's.
func (s *Server) revokeRefresh(w http.ResponseWriter, r *http.Request, c *vault.Client, tok string) {
	err := s.v.Batch(func(tx *vault.Tx) error {
		rt, err := tx.RefreshToken(tok)
		switch {
		case errors.Is(err, vault.ErrRefreshInvalid):
			return nil // unknown, used, expired or revoked: nothing to do
		case err != nil:
			return err
		case rt.ClientID != c.ID:
			return errRefreshOtherClient
		}
		return tx.RevokeRefreshFamily(rt.FamilyID)
	})
	switch {
	case errors.Is(err, errRefreshOtherClient):
		fail(w, r, &oauthError{status: http.StatusBadRequest, code: errUnauthorizedClient,
			description: "the token was not issued to this client", cause: err})
	case err != nil:
		s.metrics.storeError(opRevoke)
		fail(w, r, &oauthError{status: http.StatusServiceUnavailable, code: errTemporarily,
			description: "cannot record the revocation now; retry", retryAfter: 1, cause: err})
	default:
		w.WriteHeader(http.StatusOK)
	}
}

func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// Short, so that resource servers see a rotated key soon; they also
	// refetch on an unknown kid.
	h.Set("Cache-Control", "public, max-age=60")
	h.Set("Access-Control-Allow-Origin", "*")
	writeBody(w, http.StatusOK, "application/json", s.current().jwks)
}

func (s *Server) handleMetadata(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("Access-Control-Allow-Origin", "*")
	doc := s.current().oauthMetadata
	if r.Pattern == http.MethodGet+" "+pathOIDCMetadata {
		doc = s.current().oidcMetadata
	}
	writeBody(w, http.StatusOK, "application/json", doc)
}

// Reasons /healthz gives for 503.
var (
	reasonVaultUnreadable = "vault unreadable"
	reasonVaultRolledBack = "vault rolled back"
)

// setVaultTrouble notes the outcome of a poll of the vault for /healthz:
// err is the poll's error, nil when it read the vault.
func (s *Server) setVaultTrouble(err error) {
	switch {
	case err == nil:
		s.vaultTrouble.Store(nil)
	case errors.Is(err, vault.ErrRolledBack):
		s.vaultTrouble.Store(&reasonVaultRolledBack)
	default:
		s.vaultTrouble.Store(&reasonVaultUnreadable)
	}
}

// handleHealth is /healthz, liveness: 200 {"status":"ok"} while the server
// can read its vault, and 503 {"status":"unavailable","reason":...} while
// its last poll of the vault failed (removed, unreadable, rolled back),
// when /token and /verify cannot count uses and the snapshot goes stale.
// The reason is short and names no path; the log says more, once. It does
// not look at how recent the last poll is, nor whether the snapshot has
// caught up: that is readiness, /readyz (handleReady), which is what a load
// balancer should route by; /healthz is for deciding on a restart. Both,
// like /metrics, are unauthenticated, for the internal network.
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if reason := s.vaultTrouble.Load(); reason != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": *reason})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// metadata is the authorization server metadata (RFC 8414 §2), which with
// the OpenID fields is also the OpenID Provider metadata (OpenID Connect
// Discovery 1.0 §3).
type metadata struct {
	Issuer                                    string   `json:"issuer"`
	AuthorizationEndpoint                     string   `json:"authorization_endpoint"`
	TokenEndpoint                             string   `json:"token_endpoint"`
	JWKSURI                                   string   `json:"jwks_uri"`
	IntrospectionEndpoint                     string   `json:"introspection_endpoint"`
	RevocationEndpoint                        string   `json:"revocation_endpoint"`
	GrantTypesSupported                       []string `json:"grant_types_supported"`
	ResponseTypesSupported                    []string `json:"response_types_supported"`
	TokenEndpointAuthMethodsSupported         []string `json:"token_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthMethodsSupported []string `json:"introspection_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethodsSupported    []string `json:"revocation_endpoint_auth_methods_supported"`
	CodeChallengeMethodsSupported             []string `json:"code_challenge_methods_supported"`
	ScopesSupported                           []string `json:"scopes_supported"`
	// RFC 9207: the authorization response carries iss.
	AuthorizationResponseIssParameterSupported bool `json:"authorization_response_iss_parameter_supported"`

	// OpenID Connect Discovery only.
	UserInfoEndpoint                 string   `json:"userinfo_endpoint,omitempty"`
	SubjectTypesSupported            []string `json:"subject_types_supported,omitempty"`
	IDTokenSigningAlgValuesSupported []string `json:"id_token_signing_alg_values_supported,omitempty"`
	ClaimsSupported                  []string `json:"claims_supported,omitempty"`
	PromptValuesSupported            []string `json:"prompt_values_supported,omitempty"`
}

// encodeDocuments renders the JWKS and both metadata documents of snap.
func (s *Server) encodeDocuments(snap *snapshot) error {
	jwks, err := json.Marshal(snap.keys.JWKS())
	if err != nil {
		return err
	}
	authMethods := []string{authBasic, authPost}
	md := metadata{
		Issuer:                s.issuer,
		AuthorizationEndpoint: s.issuer + pathAuthorize,
		TokenEndpoint:         s.endpoints.token,
		JWKSURI:               s.endpoints.jwks,
		IntrospectionEndpoint: s.endpoints.introspect,
		RevocationEndpoint:    s.endpoints.revoke,
		GrantTypesSupported:   token.SupportedGrantTypes,
		// The authorization endpoint answers with a code, and only that.
		ResponseTypesSupported: []string{"code"},
		// "none": public clients (PKCE only) at the token endpoint.
		TokenEndpointAuthMethodsSupported:          append(slices.Clone(authMethods), "none"),
		CodeChallengeMethodsSupported:              []string{token.CodeChallengeS256},
		ScopesSupported:                            oidcScopes,
		AuthorizationResponseIssParameterSupported: true,
		IntrospectionEndpointAuthMethodsSupported:  authMethods,
		RevocationEndpointAuthMethodsSupported:     append(slices.Clone(authMethods), "none"),
	}
	oauthDoc, err := json.Marshal(md)
	if err != nil {
		return err
	}
	md.UserInfoEndpoint = s.issuer + pathUserInfo
	md.SubjectTypesSupported = []string{"public"}
	md.ClaimsSupported = []string{"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "name", "preferred_username", "email"}
	md.PromptValuesSupported = []string{"none", "login", "consent"}
	// ID tokens are signed by the active key; a client may meet any key
	// the JWKS publishes while keys rotate.
	for _, alg := range snap.keys.Algs() {
		md.IDTokenSigningAlgValuesSupported = append(md.IDTokenSigningAlgValuesSupported, string(alg))
	}
	oidcDoc, err := json.Marshal(md)
	if err != nil {
		return err
	}
	snap.jwks, snap.oauthMetadata, snap.oidcMetadata = jwks, oauthDoc, oidcDoc
	return nil
}
