package server

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/keymint/keymint/server/authui"
	"github.com/keymint/keymint/vault"
)

// Consent (POST /authorize/consent) and the authorization code.

// errNoSession is a consent posted without a signed-in session (expired,
// or cookies refused).
var errNoSession = errors.New("no sign-in session")

// showConsent renders the consent page: every scope f asks for, those
// already granted marked.
func (s *Server) showConsent(w http.ResponseWriter, r *http.Request, f *flow, c *vault.Client, u *vault.User, g *vault.Grant) {
	flowToken, csrf, err := s.sealedFlow(w, r, f, u.ID)
	if err != nil {
		s.serverErrorPage(w, r, f, err)
		return
	}
	scopes := make([]authui.Scope, 0, len(f.Scopes))
	for _, sc := range f.Scopes {
		scopes = append(scopes, authui.Scope{Name: sc, AlreadyGranted: g != nil && slices.Contains(g.Scopes, sc)})
	}
	shown := u.DisplayName
	if shown == "" {
		shown = u.Name
	}
	_ = s.pages.Consent(w, http.StatusOK, s.pages.Lang(r, f.UILocales), authui.Consent{
		Client: pageClient(c), Flow: flowToken, CSRF: csrf, User: shown, Scopes: scopes,
		Action: pathConsent, RedirectURI: f.RedirectURI,
	})
}

// handleConsent is POST /authorize/consent: the user's answer.
func (s *Server) handleConsent(w http.ResponseWriter, r *http.Request) {
	sess := s.sessionOf(r)
	if sess == nil {
		s.refuseAuthorize(w, r, nil, nil, pageError(http.StatusBadRequest, authui.SessionExpired, errNoSession))
		return
	}
	f, c, ok := s.openForm(w, r, sess.UserID)
	if !ok {
		return
	}
	if r.PostForm.Get(authui.FieldDecision) != authui.DecisionAllow {
		s.refuseAuthorize(w, r, f, c, redirectError("access_denied", "the user denied the request"))
		return
	}
	user, _, err := s.userAndGrant(sess.UserID, c.ID)
	if err != nil {
		s.serverErrorPage(w, r, f, err)
		return
	}
	if user == nil {
		s.clearSession(w, r)
		s.refuseAuthorize(w, r, f, c, pageError(http.StatusBadRequest, authui.SessionExpired, errNoSession))
		return
	}
	s.issueCode(w, r, f, c, user, sess)
}

// issueCode records the user's grant of f's scopes to c (widening the
// grant they had) and a new authorization code for it, and sends the
// browser back to the client with the code.
func (s *Server) issueCode(w http.ResponseWriter, r *http.Request, f *flow, c *vault.Client, u *vault.User, sess *session) {
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	code := base64.RawURLEncoding.EncodeToString(raw)
	now := s.now()
	// Batched: sign-ins at once share a commit (see vault.Batch).
	err := s.v.Batch(func(tx *vault.Tx) error {
		g := &vault.Grant{UserID: u.ID, ClientID: c.ID, Scopes: f.Scopes}
		if err := tx.SaveGrant(g); err != nil {
			return err
		}
		return tx.CreateAuthCode(code, &vault.AuthCode{
			ClientID: c.ID, UserID: u.ID, GrantID: g.ID, RedirectURI: f.RedirectURI, RedirectGiven: f.RedirectGiven,
			CodeChallenge: f.Challenge, Scopes: f.Scopes, Nonce: f.Nonce,
			AuthTime: time.Unix(sess.AuthTime, 0).UTC(), ExpiresAt: now.Add(codeTTL),
		})
	})
	if err != nil {
		s.refuseAuthorize(w, r, f, c, &authError{redirect: true, code: errTemporarily, desc: "cannot record the authorization now; retry", cause: err})
		return
	}
	q := url.Values{"code": {code}, "iss": {s.issuer}}
	if f.State != "" {
		q.Set("state", f.State)
	}
	s.redirectTo(w, r, f.RedirectURI, q)
}
