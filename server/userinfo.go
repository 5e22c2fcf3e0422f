package server

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/keymint/keymint/token"
	"github.com/keymint/keymint/vault"
)

// The UserInfo endpoint (OpenID Connect Core §5.3): the signed-in user's
// claims, for an access token a client got for them with the openid
// scope, as the scopes granted allow.

const pathUserInfo = "/userinfo"

// errNotUserToken is an active token that UserInfo does not serve: a
// client's own, or a user's without the openid scope.
var errNotUserToken = errors.New("not a user's token with the openid scope")

type userInfo struct {
	Subject           string `json:"sub"`
	Name              string `json:"name,omitempty"`
	PreferredUsername string `json:"preferred_username,omitempty"`
	Email             string `json:"email,omitempty"`
}

// handleUserInfo is GET or POST /userinfo with a Bearer access token
// (RFC 6750 §2.1).
func (s *Server) handleUserInfo(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	noStore(h)
	scheme, raw, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || raw == "" || len(r.Header.Values("Authorization")) > 1 {
		h.Set("WWW-Authenticate", `Bearer realm="keymint"`)
		logOf(w).cause = errors.New("no Bearer access token")
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	claims, err := s.activeClaims(s.current(), strings.TrimSpace(raw), s.now())
	if err == nil && (!claims.OnBehalfOfUser() || !slices.Contains(claims.Scope, "openid")) {
		err = errNotUserToken
	}
	if err != nil {
		logOf(w).cause = err
		status, code := http.StatusUnauthorized, "invalid_token"
		switch {
		case errors.Is(err, errNotUserToken):
			// Valid, but not for this (RFC 6750 §3.1).
			status, code = http.StatusForbidden, "insufficient_scope"
		case !token.IsInactive(err):
			status, code = http.StatusServiceUnavailable, errTemporarily
		}
		h.Set("WWW-Authenticate", `Bearer realm="keymint", error="`+code+`"`)
		w.WriteHeader(status)
		return
	}
	logOf(w).jti = claims.ID
	var u *vault.User
	if err := s.v.View(func(tx *vault.Tx) (err error) { u, err = tx.User(claims.Subject); return err }); err != nil {
		logOf(w).cause = err
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	id := token.IDClaims{}
	fillProfile(&id, u, claims.Scope)
	writeJSON(w, http.StatusOK, userInfo{Subject: u.ID, Name: id.Name, PreferredUsername: id.PreferredUsername, Email: id.Email})
}
