package server

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keymint/keymint/apikey"
	"github.com/keymint/keymint/quota"
	"github.com/keymint/keymint/vault"
)

// The gateway check, GET /verify: an API gateway (nginx auth_request, Envoy
// ext_authz, Traefik forwardAuth) forwards a request's headers and lets the
// request through on 2xx. The key is read from
//
//	Authorization: Bearer KEY
//	X-API-Key: KEY
//
// and the answer is one of:
//
//	200  the key is valid, and one use of it was counted: X-Keymint-Key-Id,
//	     X-Keymint-Key-Name and X-Keymint-Scopes (space-separated) say whose
//	     it is, and RateLimit-Policy, RateLimit and RateLimit-* (with
//	     X-RateLimit-*) where it stands when it has limits (see
//	     writeRateLimit)
//	400  the request is ambiguous: more than one Authorization or X-API-Key
//	     field, or both kinds carrying different keys
//	401  no key, or one that is malformed, mistyped (checksum), unknown,
//	     retired or expired; with WWW-Authenticate: Bearer realm="keymint"
//	429  the key is over a limit (Retry-After, the RateLimit fields), or too many
//	     failed checks came from the caller's address (Retry-After)
//	503  the use cannot be counted now: the key has no leased use left and
//	     the vault cannot be written to lease more (Retry-After)
//
// Envoy's ext_authz HTTP service keeps the method of the request it checks
// and appends its path to the configured prefix: so /verify/ followed by
// any path, with GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS, is
// answered exactly as GET /verify (HEAD without a body). Its body, if any,
// is never read. Plain /verify takes GET and HEAD only.
//
// Every answer has Cache-Control: no-store, so that no cache between the
// gateway and keymint answers for a key later, and a body that is at most a
// short JSON object ({"error":"invalid_key"}; none for HEAD).

// Response fields of /verify.
const (
	headerKeyID     = "X-Keymint-Key-Id"
	headerKeyName   = "X-Keymint-Key-Name"
	headerKeyScopes = "X-Keymint-Scopes"
	headerAPIKey    = "X-Api-Key" // X-API-Key, canonical
)

// /verify error codes, in the body of a refusal.
const (
	errInvalidKey = "invalid_key"
)

// Causes of a refused key, for the log; none quotes the key.
var (
	errNoKey          = errors.New("no API key")
	errNotBearer      = errors.New("authorization scheme is not Bearer, and no X-API-Key")
	errEmptyKey       = errors.New("empty API key")
	errKeyTooLong     = errors.New("API key too long")
	errRepeatedAuth   = errors.New("more than one Authorization field")
	errRepeatedAPIKey = errors.New("more than one X-API-Key field")
	errConflictingKey = errors.New("the Authorization and X-API-Key fields carry different keys")
	errUnknownKey     = errors.New("unknown key")
	errRetiredKey     = errors.New("retired key")
	errKeyExpired     = errors.New("key has expired")
	errKeyDisabled    = errors.New("key is disabled")
	errKeyRemoved     = errors.New("key removed meanwhile")
)

// keyRequestError is a refusal of /verify: a status, what the caller sees
// (code) and what only the log sees (cause).
type keyRequestError struct {
	status     int
	code       string
	retryAfter int
	cause      error
}

func keyRefused(cause error) *keyRequestError {
	return &keyRequestError{status: http.StatusUnauthorized, code: errInvalidKey, cause: cause}
}

// keyFromHeaders finds the API key of a /verify request: the credentials of
// an Authorization field with the Bearer scheme (RFC 6750 §2.1), or the
// value of an X-API-Key field. Both may be given if they carry the same key.
// An Authorization field of another scheme (Basic, say, meant for the
// upstream) is ignored when X-API-Key is given. Surrounding spaces and tabs
// are trimmed. The errors never quote a header value.
func keyFromHeaders(h http.Header) (string, *keyRequestError) {
	auths, apiKeys := h.Values("Authorization"), h.Values(headerAPIKey)
	switch {
	case len(auths) > 1:
		return "", &keyRequestError{status: http.StatusBadRequest, code: errInvalidRequest, cause: errRepeatedAuth}
	case len(apiKeys) > 1:
		return "", &keyRequestError{status: http.StatusBadRequest, code: errInvalidRequest, cause: errRepeatedAPIKey}
	}
	var bearer, xkey string
	haveBearer, haveX := false, len(apiKeys) == 1
	if len(auths) == 1 {
		scheme, rest, _ := strings.Cut(strings.TrimLeft(auths[0], " \t"), " ")
		if strings.EqualFold(scheme, "Bearer") {
			bearer, haveBearer = strings.Trim(rest, " \t"), true
		}
	}
	if haveX {
		xkey = strings.Trim(apiKeys[0], " \t")
	}
	var key string
	switch {
	case haveBearer && haveX && bearer != xkey:
		return "", &keyRequestError{status: http.StatusBadRequest, code: errInvalidRequest, cause: errConflictingKey}
	case haveBearer:
		key = bearer
	case haveX:
		key = xkey
	case len(auths) == 1:
		return "", keyRefused(errNotBearer)
	default:
		return "", keyRefused(errNoKey)
	}
	switch {
	case key == "":
		return "", keyRefused(errEmptyKey)
	case len(key) > maxCredentialLen:
		return "", keyRefused(errKeyTooLong)
	}
	return key, nil
}

// verifyKey is an API key as /verify serves it: the record, and what a 200
// says about it, rendered once per snapshot.
type verifyKey struct {
	key *vault.Key
	// Header values, as the one-element slices http.Header holds, shared
	// by every response: net/http only reads them.
	id, name, scopes []string
	// policy is the RateLimit-Policy field of a key with limits, nil
	// for one without.
	policy []string
	body   []byte
}

func newVerifyKey(k *vault.Key) *verifyKey {
	return &verifyKey{
		key:    k,
		id:     []string{k.ID},
		name:   []string{k.Name},
		scopes: []string{strings.Join(k.Scopes, " ")},
		policy: rateLimitPolicy(&k.Credential),
		// An id is key_ and base62, a name letters, digits and ._- (see
		// vault.ValidateName): nothing to escape in JSON.
		body: []byte(`{"valid":true,"key_id":"` + k.ID + `","name":"` + k.Name + `"}`),
	}
}

// verifyBodies are the bodies of refusals, by code: a short JSON object, the
// code alone.
var verifyBodies = func() map[string][]byte {
	m := map[string][]byte{}
	for _, code := range []string{errInvalidKey, errInvalidRequest, errQuotaExceeded, errTemporarily} {
		m[code] = []byte(`{"error":"` + code + `"}`)
	}
	return m
}()

// verifySubtree is the prefix of the paths served as GET /verify whatever
// their method (see serveVerifySubtree); verifySubtreePattern names them
// in the log, which never shows the path itself.
const (
	verifySubtree        = "/verify/"
	verifySubtreePattern = "/verify/{path...}"
)

// verifySubtreeMethods are the methods served on /verify/PATH, in the
// order of the Allow field of a 405.
var verifySubtreeMethods = []string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
	http.MethodPatch, http.MethodDelete, http.MethodOptions,
}

// serveVerifySubtree answers /verify/PATH, for Envoy's ext_authz, as GET
// /verify, with any method of verifySubtreeMethods; others get 405.
func (s *Server) serveVerifySubtree(w http.ResponseWriter, r *http.Request) {
	r.Pattern = verifySubtreePattern
	if !slices.Contains(verifySubtreeMethods, r.Method) {
		s.metrics.verify[verifyMethod].Inc()
		w.Header().Set("Allow", strings.Join(verifySubtreeMethods, ", "))
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return
	}
	s.handleVerify(w, r)
}

// handleVerify is the gateway check, GET (or HEAD) /verify.
func (s *Server) handleVerify(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	noStore(h)
	secret, e := keyFromHeaders(r.Header)
	if e == nil {
		e = s.verify(w, r, secret)
	}
	if e != nil {
		s.metrics.verify[outcomeOf(e)].Inc()
		s.refuseKey(w, r, e)
		return
	}
	s.metrics.verify[verifyAccepted].Inc()
}

// verify checks secret and counts one use of its key. On success it has
// written the 200 response.
//
// The key is checked before the failed-authentication throttle is
// consulted, which it is for failures alone: a valid key is never refused
// by it, from any address. Keys have no throttle bucket of their own: a key
// is named only by its secret, so failures cannot be aimed at one. The
// caller's address is throttled as for failed client authentication, and
// shares its buckets.
func (s *Server) verify(w http.ResponseWriter, r *http.Request, secret string) *keyRequestError {
	now := s.now()
	// A mistyped or truncated key costs no HMAC and no lookup, and is no
	// guess at a key: it does not drain the throttle, though a throttled
	// address gets 429 for it like for any failure.
	if _, err := apikey.Parse(secret); err != nil && !legacyShaped(err, secret) {
		if wait := s.throttle.blocked(logOf(w).remote, now); wait > 0 {
			return keyThrottled(wait, err)
		}
		return keyRefused(err) // apikey's errors do not quote the secret
	}
	// A keymint key, or one that may be an imported legacy key (looked
	// up by its HMAC as any other; an unknown one is a guess, throttled).
	snap := s.current()
	mac := s.v.MAC(secret)
	k, _ := snap.apiKeys.getBytes(mac)
	if k == nil {
		vault.SecretMatches(&s.decoy, mac, now) // the same work as a retired key
		return s.keyFailed(w, now, errUnknownKey)
	}
	info := logOf(w)
	info.keyID = k.key.ID
	switch err := vault.Usable(vault.KindKey, &k.key.Credential, mac, now); {
	case errors.Is(err, vault.ErrExpired):
		// The right secret of an expired key: no guess, nothing to
		// throttle.
		return keyRefused(errKeyExpired)
	case errors.Is(err, vault.ErrDisabled):
		// The right secret of a disabled key: no guess either.
		return keyRefused(errKeyDisabled)
	case err != nil:
		// Found by its secret, so a retired one (ErrSecretRetired).
		return s.keyFailed(w, now, errRetiredKey)
	}
	d, err := s.take(kindAPIKey, &k.key.Credential)
	switch {
	case errors.Is(err, vault.ErrNotFound):
		return keyRefused(errKeyRemoved)
	case err != nil:
		return &keyRequestError{status: http.StatusServiceUnavailable, code: errTemporarily, retryAfter: 1, cause: err}
	}
	h := w.Header()
	if d.Limited {
		writeRateLimit(h, d, k.policy, now)
	}
	if !d.Allowed {
		s.metrics.quotaRefusals[kindIndex(kindAPIKey)].Inc()
		return &keyRequestError{status: http.StatusTooManyRequests, code: errQuotaExceeded,
			retryAfter: quota.RetryAfter(d.Status, now),
			cause:      fmt.Errorf("%d/%s limit reached", d.Status.Limit, d.Status.Period)}
	}
	s.markUsed(vault.KindKey, k.key.ID)
	h[headerKeyID] = k.id
	h[headerKeyName] = k.name
	h[headerKeyScopes] = k.scopes
	writeVerifyBody(w, r, http.StatusOK, k.body)
	return nil
}

// legacyShaped reports whether a secret apikey.Parse refused with err may
// be an imported legacy one (vault.ValidateLegacySecret): not in keymint's
// shape at all, rather than a mistyped keymint secret.
func legacyShaped(err error, secret string) bool {
	return errors.Is(err, apikey.ErrMalformed) && vault.ValidateLegacySecret(secret) == nil
}

// keyFailed records a failed key check against the caller's address and
// returns its refusal: 401 within the address's allowance, else 429 with
// Retry-After.
func (s *Server) keyFailed(w http.ResponseWriter, now time.Time, cause error) *keyRequestError {
	if wait := s.throttle.fail(logOf(w).remote, now); wait > 0 {
		return keyThrottled(wait, cause)
	}
	return keyRefused(cause)
}

// keyThrottled is the 429 of an address whose failed checks are
// throttled.
func keyThrottled(wait time.Duration, cause error) *keyRequestError {
	return &keyRequestError{status: http.StatusTooManyRequests, code: errTemporarily,
		retryAfter: retryAfterSeconds(wait), cause: fmt.Errorf("failed-authentication throttle (%w)", cause)}
}

// refuseKey writes a /verify refusal and notes it for the log.
func (s *Server) refuseKey(w http.ResponseWriter, r *http.Request, e *keyRequestError) {
	info := logOf(w)
	info.code, info.cause = e.code, e.cause
	h := w.Header()
	if e.status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="keymint"`)
	}
	if e.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.retryAfter))
	}
	writeVerifyBody(w, r, e.status, verifyBodies[e.code])
}

// writeVerifyBody writes a /verify response; a HEAD request gets the fields
// of the GET response and no body.
func writeVerifyBody(w http.ResponseWriter, r *http.Request, status int, body []byte) {
	h := w.Header()
	h["Content-Type"] = jsonValue
	h["Content-Length"] = contentLengthValue(len(body))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}
