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
	if len(r.Header.Values("Authorization")) > 0 || form.Get("client_secret") != "" {
		return s.authenticate(w, r, form)
	}
	snap := s.current()
	c, ok := snap.clients.get(form.Get("client_id"))
	if !ok || !c.Public {
		return nil, nil, s.authFailed(w, s.now(), errNoCredentials)
	}
	logOf(w).clientID = c.ID
	return c, snap, nil
}

// tokenByCode is grant_type=authorization_code.
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
	var ac *vault.AuthCode
	err := s.v.Update(func(tx *vault.Tx) error {
		var err error
		if ac, err = tx.RedeemAuthCode(code); err != nil {
			return err
		}
		// A check that fails rolls the redemption back: the code stays
		// good for the client it was issued to.
		switch {
		case ac.ClientID != c.ID:
			return errCodeOtherClient
		case form.Get("redirect_uri") != ac.RedirectURI:
			return errCodeRedirect
		}
		return token.CheckCodeVerifier(ac.CodeChallenge, verifier)
	})
	var reused *vault.CodeReusedError
	switch {
	case errors.As(err, &reused):
		return invalidGrant("the authorization code was already used; what it gave is revoked", err)
	case errors.Is(err, vault.ErrCodeInvalid), errors.Is(err, errCodeOtherClient), errors.Is(err, errCodeRedirect), errors.Is(err, token.ErrPKCE):
		return invalidGrant("the authorization code is invalid, expired, or not for this client, redirect URI or code verifier", err)
	case err != nil:
		return temporarily(err)
	}
	return s.userTokens(w, c, snap, userIssue{
		userID: ac.UserID, grantID: ac.GrantID, scopes: ac.Scopes, authTime: ac.AuthTime, nonce: ac.Nonce,
		record: func(tx *vault.Tx, familyID string, issued vault.IssuedToken) error {
			return tx.RecordAuthCodeIssue(code, familyID, issued)
		},
	})
}

var (
	errCodeOtherClient = errors.New("code of another client")
	errCodeRedirect    = errors.New("redirect_uri differs from the authorization request's")
)

func temporarily(err error) *oauthError {
	return &oauthError{status: http.StatusServiceUnavailable, code: errTemporarily,
		description: "cannot read the vault now; retry", retryAfter: 1, cause: err}
}

// tokenByRefresh is grant_type=refresh_token: the token is rotated, and a
// rotated one presented again revokes its family.
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
	next, err := s.newRefreshToken()
	if err != nil {
		return temporarily(err)
	}
	var rt *vault.RefreshToken
	err = s.v.Update(func(tx *vault.Tx) error {
		if rt, err = tx.RotateRefreshToken(old, next); err != nil {
			return err
		}
		if rt.ClientID != c.ID {
			return errRefreshOtherClient
		}
		return nil
	})
	var reused *vault.RefreshReusedError
	switch {
	case errors.As(err, &reused):
		return invalidGrant("the refresh token was already used; its whole family is revoked", err)
	case errors.Is(err, vault.ErrRefreshInvalid), errors.Is(err, errRefreshOtherClient):
		return invalidGrant("the refresh token is invalid, expired, revoked or not this client's", err)
	case err != nil:
		return temporarily(err)
	}
	scopes := rt.Scopes
	if len(narrow) > 0 {
		for _, sc := range narrow {
			if !slices.Contains(rt.Scopes, sc) {
				return &oauthError{status: http.StatusBadRequest, code: errInvalidScope, description: "a refresh may only narrow the granted scope"}
			}
		}
		scopes = narrow
	}
	return s.userTokens(w, c, snap, userIssue{
		userID: rt.UserID, grantID: rt.GrantID, scopes: scopes, authTime: rt.AuthTime,
		refresh: next, refreshed: rt,
	})
}

var errRefreshOtherClient = errors.New("refresh token of another client")

// userIssue is what the user grants issue tokens from.
type userIssue struct {
	userID, grantID string
	scopes          []string
	authTime        time.Time
	nonce           string
	// refresh is the rotated refresh token already stored (refreshed its
	// record); empty for a code, which gets a new family.
	refresh   string
	refreshed *vault.RefreshToken
	// record notes what a code issued, so a reuse can revoke it.
	record func(tx *vault.Tx, familyID string, issued vault.IssuedToken) error
}

// userTokens issues the access token (counted against c's limits, as any
// token of c), a refresh token and, with openid, an ID token, and writes
// the response.
func (s *Server) userTokens(w http.ResponseWriter, c *vault.Client, snap *snapshot, u userIssue) *oauthError {
	claims, resp, e := s.issueAccess(w, c, snap, token.Request{User: &token.UserRequest{UserID: u.userID, Scopes: u.scopes, AuthTime: u.authTime}})
	if e != nil {
		return e
	}
	out := userTokenResponse{Response: resp, RefreshToken: u.refresh}
	user, err := s.touchGrant(u, c, claims, &out)
	if err != nil {
		return temporarily(err)
	}
	if slices.Contains(u.scopes, "openid") {
		if out.IDToken, err = s.idToken(snap, c, user, claims, u.nonce, resp.AccessToken); err != nil {
			return &oauthError{status: http.StatusInternalServerError, code: errServerError, description: "cannot issue a token now", cause: err}
		}
	}
	noStore(w.Header())
	writeJSON(w, http.StatusOK, out)
	return nil
}

// touchGrant records the grant's last access and, for a code, its new
// refresh token family, in one transaction; it returns the user.
func (s *Server) touchGrant(u userIssue, c *vault.Client, claims token.Claims, out *userTokenResponse) (*vault.User, error) {
	var refresh string
	if u.refresh == "" {
		var err error
		if refresh, err = s.newRefreshToken(); err != nil {
			return nil, err
		}
	}
	var user *vault.User
	err := s.v.Update(func(tx *vault.Tx) error {
		var err error
		if user, err = tx.User(u.userID); err != nil {
			return err
		}
		if err := tx.TouchGrant(u.grantID, claims.IssuedAt); err != nil {
			return err
		}
		if refresh == "" {
			return nil
		}
		rt := &vault.RefreshToken{GrantID: u.grantID, ClientID: c.ID, UserID: u.userID, Scopes: u.scopes,
			AuthTime: u.authTime, ExpiresAt: claims.IssuedAt.Add(refreshTTL)}
		if err := tx.CreateRefreshToken(refresh, rt); err != nil {
			return err
		}
		return u.record(tx, rt.FamilyID, vault.IssuedToken{JTI: claims.ID, ExpiresAt: claims.ExpiresAt})
	})
	if err != nil {
		return nil, err
	}
	if refresh != "" {
		out.RefreshToken = refresh
	}
	return user, nil
}

// newRefreshToken makes a refresh token in keymint's secret format, with
// the vault's refresh token prefix.
func (s *Server) newRefreshToken() (string, error) {
	var settings vault.Settings
	if err := s.v.View(func(tx *vault.Tx) (err error) { settings, err = tx.Settings(); return err }); err != nil {
		return "", err
	}
	return apikey.Generate(settings.RefreshTokenPrefix())
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
