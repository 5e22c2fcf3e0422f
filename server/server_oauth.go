package server

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/keymint/keymint/token"
)

// OAuth error codes (RFC 6749 §5.2, RFC 7009 §2.2.1, RFC 8707 §2).
const (
	errInvalidRequest       = "invalid_request"
	errInvalidClient        = "invalid_client"
	errUnauthorizedClient   = "unauthorized_client"
	errUnsupportedGrantType = "unsupported_grant_type"
	errInvalidScope         = "invalid_scope"
	errInvalidTarget        = "invalid_target"
	errServerError          = "server_error"
	errTemporarily          = "temporarily_unavailable"
	// errQuotaExceeded is keymint's own (unregistered) code for a client
	// over its usage limit, sent with 429, Retry-After and RateLimit-*.
	errQuotaExceeded = "quota_exceeded"
)

// Client authentication methods (RFC 8414 §2, RFC 7591 §2).
const (
	authBasic = "client_secret_basic"
	authPost  = "client_secret_post"
)

// oauthError is an error response: what the client may see (code and
// description, RFC 6749 §5.2) and what only the log sees (cause).
type oauthError struct {
	status      int
	code        string
	description string
	retryAfter  int // seconds; set for 429
	cause       error
}

func (e *oauthError) Error() string {
	if e.cause != nil {
		return e.code + ": " + e.description + ": " + e.cause.Error()
	}
	return e.code + ": " + e.description
}

func badRequest(format string, args ...any) *oauthError {
	return &oauthError{status: http.StatusBadRequest, code: errInvalidRequest, description: fmt.Sprintf(format, args...)}
}

// clientAuthFailed is the one answer to every failed client authentication,
// whatever the reason, which goes to the log only.
func clientAuthFailed(cause error) *oauthError {
	return &oauthError{status: http.StatusUnauthorized, code: errInvalidClient, description: "client authentication failed", cause: cause}
}

// Causes of failed client authentication, for the log.
var (
	errNoCredentials  = errors.New("no client credentials")
	errMalformedBasic = errors.New("malformed Basic credentials")
	errNotBasic       = errors.New("authorization scheme is not Basic")
	errUnknownClient  = errors.New("unknown client")
	errWrongSecret    = errors.New("wrong or retired secret")
	errClientExpired  = errors.New("client has expired")
)

// noStore marks a response that must not be cached: token, introspection
// and revocation responses and their errors (RFC 6749 §5.1).
func noStore(h http.Header) {
	h["Cache-Control"] = noStoreValue
	h["Pragma"] = noCacheValue
}

// Header values set on every response, shared rather than allocated per
// request (Header.Set canonicalizes its key and allocates a slice): the keys
// are already canonical, and net/http never modifies a value slice.
var (
	noStoreValue = []string{"no-store"}
	noCacheValue = []string{"no-cache"}
	nosniffValue = []string{"nosniff"}
	jsonValue    = []string{"application/json"}
)

// contentLengthValue is the Content-Length value of a body of n bytes,
// shared for the short bodies of /verify.
func contentLengthValue(n int) []string {
	if n < len(contentLengths) {
		return contentLengths[n]
	}
	return []string{strconv.Itoa(n)}
}

var contentLengths = func() (v [256][]string) {
	for n := range v {
		v[n] = []string{strconv.Itoa(n)}
	}
	return v
}()

// writeJSON writes v with status. Errors writing are the client's problem:
// it went away.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"error":"server_error"}`)
	}
	writeBody(w, status, "application/json;charset=UTF-8", body)
}

func writeBody(w http.ResponseWriter, status int, contentType string, body []byte) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeError writes e as an RFC 6749 §5.2 error response.
func writeError(w http.ResponseWriter, e *oauthError) {
	h := w.Header()
	noStore(h)
	if e.status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Basic realm="keymint", charset="UTF-8"`)
	}
	if e.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.retryAfter))
	}
	body := struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
	}{e.code, e.description}
	writeJSON(w, e.status, body)
}

// readForm reads an application/x-www-form-urlencoded body of at most max
// bytes, the cap [Server.ServeHTTP] set on r.Body. Parameters in the URL are refused: they would put secrets and
// tokens in logs and browser histories (RFC 6749 §3.2, RFC 7662 §2.1).
func readForm(r *http.Request, max int64) (url.Values, *oauthError) {
	if r.URL.RawQuery != "" {
		return nil, badRequest("send parameters in the request body, not in the URL")
	}
	types := r.Header.Values("Content-Type")
	if len(types) != 1 {
		return nil, badRequest("the request body must be application/x-www-form-urlencoded")
	}
	if mt, _, err := mime.ParseMediaType(types[0]); err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, badRequest("the request body must be application/x-www-form-urlencoded")
	}
	tooLarge := &oauthError{status: http.StatusRequestEntityTooLarge, code: errInvalidRequest,
		description: fmt.Sprintf("the request body is larger than %d bytes", max)}
	if r.ContentLength > max {
		return nil, tooLarge
	}
	body, err := io.ReadAll(r.Body) // capped by ServeHTTP with MaxBytesReader
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge
		}
		return nil, &oauthError{status: http.StatusBadRequest, code: errInvalidRequest,
			description: "cannot read the request body", cause: err}
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, badRequest("the request body is not a valid form")
	}
	return form, nil
}

// checkSingle refuses a repeated parameter (RFC 6749 §3.1). Parameters not
// named are not checked: unknown ones are ignored (RFC 6749 §3.2) and some
// known ones, such as resource, may be repeated (RFC 8707 §2).
func checkSingle(form url.Values, names ...string) *oauthError {
	for _, name := range names {
		if len(form[name]) > 1 {
			return badRequest("parameter %s is repeated", name)
		}
	}
	return nil
}

// credentials are a client's claimed identity and secret, unchecked.
type credentials struct {
	clientID string
	secret   string
}

// maxCredentialLen bounds a client_id or secret; keymint's are far shorter.
const maxCredentialLen = 512

// clientCredentials finds the client's credentials: HTTP Basic
// (client_secret_basic) or client_id and client_secret in the body
// (client_secret_post), never both (RFC 6749 §2.3). form must have passed
// checkSingle for client_id and client_secret.
func clientCredentials(h http.Header, form url.Values) (credentials, *oauthError) {
	auths := h.Values("Authorization")
	bodyID, bodySecret := form.Get("client_id"), form.Get("client_secret")
	switch {
	case len(auths) > 1:
		return credentials{}, badRequest("more than one Authorization header")
	case len(auths) == 1 && bodySecret != "":
		return credentials{}, badRequest("use one client authentication method: HTTP Basic or client_secret in the body, not both")
	case len(auths) == 1:
		id, secret, err := parseBasic(auths[0])
		if err == nil && secret == "" {
			err = errMalformedBasic // a public client's form; see authenticateAny
		}
		if err != nil {
			return credentials{}, clientAuthFailed(err)
		}
		if bodyID != "" && bodyID != id {
			return credentials{}, badRequest("client_id in the body differs from the one in the Authorization header")
		}
		return credentials{clientID: id, secret: secret}, nil
	case bodySecret != "":
		if bodyID == "" {
			return credentials{}, badRequest("client_secret is given without client_id")
		}
		if len(bodyID) > maxCredentialLen || len(bodySecret) > maxCredentialLen {
			return credentials{}, clientAuthFailed(errors.New("client_id or secret too long"))
		}
		return credentials{clientID: bodyID, secret: bodySecret}, nil
	}
	return credentials{}, clientAuthFailed(errNoCredentials)
}

// parseBasic decodes HTTP Basic credentials (RFC 7617) whose user and
// password are each form-encoded (RFC 6749 §2.3.1), so that a client_id or
// secret may hold ':' or non-ASCII characters. The password may be empty,
// as public clients send it; the caller decides whether that will do.
func parseBasic(header string) (id, secret string, err error) {
	scheme, rest, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Basic") {
		return "", "", errNotBasic
	}
	rest = strings.TrimLeft(rest, " ")
	if len(rest) > 4*maxCredentialLen {
		return "", "", errMalformedBasic
	}
	raw, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		return "", "", errMalformedBasic
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok {
		return "", "", errMalformedBasic
	}
	if id, err = url.QueryUnescape(user); err != nil {
		return "", "", errMalformedBasic
	}
	if secret, err = url.QueryUnescape(pass); err != nil {
		return "", "", errMalformedBasic
	}
	if id == "" {
		return "", "", errMalformedBasic
	}
	return id, secret, nil
}

// scopeParam splits the scope parameter: scope tokens separated by spaces
// (RFC 6749 §3.3). Repeated scopes count once.
func scopeParam(s string) ([]string, *oauthError) {
	var out []string
	for _, tok := range strings.Split(s, " ") {
		if tok == "" {
			continue
		}
		if !token.ValidScope(tok) {
			return nil, &oauthError{status: http.StatusBadRequest, code: errInvalidScope, description: "scope is malformed"}
		}
		if !slices.Contains(out, tok) {
			out = append(out, tok)
		}
	}
	return out, nil
}

// audienceParams gathers the requested audience: resource indicators (RFC
// 8707), which must be absolute URIs without fragment, and audience values
// (as RFC 8693 names them), which may be any string. Both may repeat; each
// value is one audience, taken whole as token.Audiences says (a comma does
// not split it), as the CLI's --audience takes it.
func audienceParams(form url.Values) ([]string, *oauthError) {
	for _, r := range form["resource"] {
		if r == "" {
			continue
		}
		u, err := url.Parse(r)
		if err != nil || !u.IsAbs() || u.Fragment != "" || strings.Contains(r, "#") {
			return nil, &oauthError{status: http.StatusBadRequest, code: errInvalidTarget, description: "resource must be an absolute URI without a fragment"}
		}
	}
	return token.Audiences(slices.Concat(form["resource"], form["audience"])), nil
}
