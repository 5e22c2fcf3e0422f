package server

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/keymint/keymint/apikey"
	"github.com/keymint/keymint/token"
	"github.com/keymint/keymint/vault"
)

// The token endpoint's user grants: authorization_code (RFC 6749 §4.1.3,
// with PKCE, RFC 7636 §4.5) and refresh_token (§6, rotating, RFC 9700
// §4.14.2). Both answer with an access token, a new refresh token and,
// when the user granted openid, an ID token.

// refreshTTL is how long a refresh token may be used; each use gives a
// new one.
const refreshTTL = 30 * 24 * time.Hour

// idTokenTTL is the lifetime of an ID token.
const idTokenTTL = time.Hour

// userTokenResponse is the token response of the user grants.
type userTokenResponse struct {
	token.Response
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
}

var errInvalidGrant = "invalid_grant"

func invalidGrant(desc string, cause error) *oauthError {
	return &oauthError{status: http.StatusBadRequest, code: errInvalidGrant, description: desc, cause: cause}
}

// authenticateAny authenticates a client of the user grants: a
// confidential client by its secret (as authenticate does), a public one
// by its client_id alone, which PKCE then binds to the code.
func (s *Server) authenticateAny(w http.ResponseWriter, r *http.Request, form url.Values) (*vault.Client, *snapshot, *oauthError) {
	id := form.Get("client_id")
	if auths := r.Header.Values("Authorization"); len(auths) == 1 {
		// Basic with an empty password is how some libraries (x/oauth2's
		// auto-detection) present a public client's id.
		basicID, empty := publicBasic(auths[0])
		if !empty || (id != "" && id != basicID) {
			return s.authenticate(w, r, form)
		}
		id = basicID
	} else if len(auths) > 1 || form.Get("client_secret") != "" {
		return s.authenticate(w, r, form)
	}
	snap := s.current()
	now := s.now()
	c, ok := snap.clients.get(id)
	if !ok || !c.Public {
		return nil, nil, s.authFailed(w, now, errNoCredentials)
	}
	logOf(w).clientID = c.ID
	// Refused here, before a code is spent or a refresh token rotated
	// for a client that may not have the tokens.
	switch err := vault.Usable(vault.KindClient, &c.Credential, nil, now); {
	case errors.Is(err, vault.ErrExpired):
		return nil, nil, clientAuthFailed(errClientExpired)
	case errors.Is(err, vault.ErrDisabled):
		return nil, nil, clientDisabled()
	case err != nil:
		return nil, nil, clientAuthFailed(err)
	}
	return c, snap, nil
}

// publicBasic reports whether an Authorization field is HTTP Basic with a
// client_id and an empty password, and returns the id.
func publicBasic(header string) (string, bool) {
	id, secret, err := parseBasic(header)
	return id, err == nil && secret == ""
}

// tokenByCode is grant_type=authorization_code. One batched vault
// transaction (see vault.Batch) redeems the code, checks it against the
// request, starts the refresh-token family, records what the code issues
// (the access token's jti, chosen here) and the grant's last access; then
// the access token is counted and signed. A count refused at that point
// (the client's limit) leaves the code used and its family unreturned: the
// client signs the user in again once its limit allows.
func (s *Server) tokenByCode(w http.ResponseWriter, r *http.Request, form url.Values) *oauthError {
	if e := checkSingle(form, "code", "redirect_uri", "code_verifier"); e != nil {
		return e
	}
	c, snap, e := s.authenticateAny(w, r, form)
	if e != nil {
		return e
	}
	code, verifier := form.Get("code"), form.Get("code_verifier")
	if code == "" || verifier == "" {
		return badRequest("code and code_verifier are required")
	}
	jti, now := token.NewJTI(), s.now()
	var ac *vault.AuthCode
	var out issued
	err := s.v.Batch(func(tx *vault.Tx) error {
		var err error
		if ac, err = tx.RedeemAuthCode(code); err != nil {
			return err
		}
		// A check that fails rolls the redemption back: the code stays
		// good for the client it was issued to.
		switch {
		case ac.ClientID != c.ID:
			return errCodeOtherClient
		case (ac.RedirectGiven || form.Has("redirect_uri")) && form.Get("redirect_uri") != ac.RedirectURI:
			return errCodeRedirect
		}
		if err := token.CheckCodeVerifier(ac.CodeChallenge, verifier); err != nil {
			return err
		}
		rt := &vault.RefreshToken{GrantID: ac.GrantID, ClientID: c.ID, UserID: ac.UserID, Scopes: ac.Scopes,
			AuthTime: ac.AuthTime, ExpiresAt: now.Add(refreshTTL)}
		if out, err = startFamily(tx, rt); err != nil {
			return err
		}
		expires := now.Truncate(time.Second).Add(c.TokenTTL)
		return tx.RecordAuthCodeIssue(code, rt.FamilyID, vault.IssuedToken{JTI: jti, ExpiresAt: expires})
	})
	var reused *vault.CodeReusedError
	switch {
	case errors.As(err, &reused):
		return invalidGrant("the authorization code was already used; what it gave is revoked", err)
	case errors.Is(err, vault.ErrCodeInvalid), errors.Is(err, errCodeOtherClient), errors.Is(err, errCodeRedirect), errors.Is(err, token.ErrPKCE):
		return invalidGrant("the authorization code is invalid, expired, or not for this client, redirect URI or code verifier", err)
	case err != nil:
		s.metrics.storeError(opGrant)
		return temporarily(err)
	}
	return s.userTokens(w, c, snap, token.UserRequest{UserID: ac.UserID, Scopes: ac.Scopes, AuthTime: ac.AuthTime, JTI: jti}, ac.Nonce, out)
}

var (
	errCodeOtherClient = errors.New("code of another client")
	errCodeRedirect    = errors.New("redirect_uri differs from the authorization request's")
)

func temporarily(err error) *oauthError {
	return &oauthError{status: http.StatusServiceUnavailable, code: errTemporarily,
		description: "cannot read the vault now; retry", retryAfter: 1, cause: err}
}

// issued is what the vault transaction of a user grant gives the response:
// the new refresh token and the user, for the ID token.
type issued struct {
	refresh string
	user    *vault.User
}

// startFamily stores a new refresh-token family's first token for rt, and
// the grant's last access, and reads the user.
func startFamily(tx *vault.Tx, rt *vault.RefreshToken) (issued, error) {
	settings, err := tx.Settings()
	if err != nil {
		return issued{}, err
	}
	refresh, err := apikey.Generate(settings.RefreshTokenPrefix())
	if err != nil {
		return issued{}, err
	}
	if err := tx.CreateRefreshToken(refresh, rt); err != nil {
		return issued{}, err
	}
	user, err := touchGrant(tx, rt.GrantID, rt.UserID)
	return issued{refresh: refresh, user: user}, err
}

// touchGrant records a grant's last access and reads its user.
func touchGrant(tx *vault.Tx, grantID, userID string) (*vault.User, error) {
	if err := tx.TouchGrant(grantID, tx.Now()); err != nil {
		return nil, err
	}
	return tx.User(userID)
}

// tokenByRefresh is grant_type=refresh_token: in one batched transaction
// the token is rotated (a rotated one presented again revokes its family)
// and the grant's last access recorded.
func (s *Server) tokenByRefresh(w http.ResponseWriter, r *http.Request, form url.Values) *oauthError {
	if e := checkSingle(form, "refresh_token", "scope"); e != nil {
		return e
	}
	c, snap, e := s.authenticateAny(w, r, form)
	if e != nil {
		return e
	}
	old := form.Get("refresh_token")
	if old == "" {
		return badRequest("refresh_token is required")
	}
	narrow, e := scopeParam(form.Get("scope"))
	if e != nil {
		return e
	}
	var rt *vault.RefreshToken
	var out issued
	err := s.v.Batch(func(tx *vault.Tx) error {
		settings, err := tx.Settings()
		if err != nil {
			return err
		}
		if out.refresh, err = apikey.Generate(settings.RefreshTokenPrefix()); err != nil {
			return err
		}
		if rt, err = tx.RotateRefreshToken(old, out.refresh); err != nil {
			return err
		}
		if rt.ClientID != c.ID {
			return errRefreshOtherClient
		}
		// A wider scope undoes the rotation: the client's mistake must
		// not spend the user's token.
		for _, sc := range narrow {
			if !slices.Contains(rt.Scopes, sc) {
				return errScopeWidened
			}
		}
		out.user, err = touchGrant(tx, rt.GrantID, rt.UserID)
		return err
	})
	var reused *vault.RefreshReusedError
	switch {
	case errors.As(err, &reused):
		return invalidGrant("the refresh token was already used; its whole family is revoked", err)
	case errors.Is(err, vault.ErrRefreshInvalid), errors.Is(err, errRefreshOtherClient):
		return invalidGrant("the refresh token is invalid, expired, revoked or not this client's", err)
	case errors.Is(err, errScopeWidened):
		return &oauthError{status: http.StatusBadRequest, code: errInvalidScope, description: "a refresh may only narrow the granted scope", cause: err}
	case err != nil:
		s.metrics.storeError(opGrant)
		return temporarily(err)
	}
	scopes := rt.Scopes
	if len(narrow) > 0 {
		scopes = narrow
	}
	return s.userTokens(w, c, snap, token.UserRequest{UserID: rt.UserID, Scopes: scopes, AuthTime: rt.AuthTime}, "", out)
}

var (
	errRefreshOtherClient = errors.New("refresh token of another client")
	errScopeWidened       = errors.New("a refresh asked for a scope beyond the grant's")
)

// userTokens issues the access token (counted against c's limits, as any
// token of c) and, with openid, an ID token, and writes the response with
// the refresh token out holds.
func (s *Server) userTokens(w http.ResponseWriter, c *vault.Client, snap *snapshot, req token.UserRequest, nonce string, out issued) *oauthError {
	claims, resp, e := s.issueAccess(w, c, snap, token.Request{User: &req})
	if e != nil {
		return e
	}
	body := userTokenResponse{Response: resp, RefreshToken: out.refresh}
	if slices.Contains(req.Scopes, "openid") {
		var err error
		if body.IDToken, err = s.idToken(snap, c, out.user, claims, nonce, resp.AccessToken); err != nil {
			return &oauthError{status: http.StatusInternalServerError, code: errServerError, description: "cannot issue a token now", cause: err}
		}
	}
	noStore(w.Header())
	writeJSON(w, http.StatusOK, body)
	return nil
}

// idToken signs the ID token of a user's token response.
func (s *Server) idToken(snap *snapshot, c *vault.Client, u *vault.User, access token.Claims, nonce, accessToken string) (string, error) {
	atHash, err := token.AccessTokenHash(snap.signer.Alg(), accessToken)
	if err != nil {
		return "", err
	}
	id := token.IDClaims{
		Issuer: s.issuer, Subject: u.ID, Audience: c.ID,
		IssuedAt: access.IssuedAt, ExpiresAt: access.IssuedAt.Add(idTokenTTL), AuthTime: access.AuthTime,
		Nonce: nonce, AccessTokenHash: atHash,
	}
	fillProfile(&id, u, access.Scope)
	return snap.signer.SignIDToken(id)
}

// fillProfile sets the standard claims the scopes granted allow.
func fillProfile(id *token.IDClaims, u *vault.User, scopes []string) {
	if slices.Contains(scopes, "profile") {
		id.Name, id.PreferredUsername = u.DisplayName, u.Name
	}
	if slices.Contains(scopes, "email") {
		id.Email = u.Email
	}
}
