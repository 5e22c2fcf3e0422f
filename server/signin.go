package server

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/keymint/keymint/password"
	"github.com/keymint/keymint/server/authui"
	"github.com/keymint/keymint/vault"
)

// Sign-in (POST /authorize/signin) and its throttle.
//
// Failures are throttled per address (the buckets of failed client
// authentication) and per user; the per-user throttle spares browsers the
// user signed in from before (knownHere), so that someone guessing a
// user's password from elsewhere slows only themselves, never the user. An
// unknown user and a wrong password get the same page, after the same
// password hashing work (password.Dummy).

// defaultUserThrottle allows 5 failed sign-ins at once per user (from
// unknown browsers), then one a minute.
var defaultUserThrottle = throttleConfig{burst: 5, interval: time.Minute, maxEntries: 100_000}

// sealedFlow seals f for the pages' hidden field, and returns it with the
// CSRF token of the form, bound to the browser (and the user, for consent).
func (s *Server) sealedFlow(w http.ResponseWriter, r *http.Request, f *flow, userID string) (flowToken, csrf string, err error) {
	flowToken, err = s.flows.seal(f, flowTTL)
	if err != nil {
		return "", "", err
	}
	return flowToken, csrfToken(s.csrfKey, s.browserBinding(w, r)+"\x00"+userID, flowToken), nil
}

// signInPage is how the sign-in page is shown: first, after a failed
// sign-in (the name kept, so only the password is typed again), or to a
// throttled caller.
type signInPage struct {
	status     int
	failed     bool
	retryAfter int
	userName   string
}

// showSignIn renders the sign-in page for f.
func (s *Server) showSignIn(w http.ResponseWriter, r *http.Request, f *flow, c *vault.Client, p signInPage) {
	flowToken, csrf, err := s.sealedFlow(w, r, f, "")
	if err != nil {
		s.serverErrorPage(w, r, f, err)
		return
	}
	_ = s.pages.SignIn(w, p.status, s.pages.Lang(r, f.UILocales), authui.SignIn{
		Client: pageClient(c), Flow: flowToken, CSRF: csrf, Action: pathSignIn, RedirectURI: f.RedirectURI,
		UserName: p.userName, Failed: p.failed, RetryAfter: p.retryAfter, Dev: s.devSignIn,
	})
}

func (s *Server) serverErrorPage(w http.ResponseWriter, r *http.Request, f *flow, err error) {
	logOf(w).cause = err
	_ = s.pages.Error(w, http.StatusInternalServerError, s.pages.Lang(r, flowLocales(f)), authui.ErrorPage{Problem: authui.ServerError})
}

func pageClient(c *vault.Client) authui.Client {
	return authui.Client{Name: c.Name, Description: c.Description, URL: c.URL, PolicyURL: c.PolicyURL, TOSURL: c.TOSURL}
}

// openForm reads a page's form: its flow, checked against its CSRF token
// for this browser and userID ("" before sign-in), and the flow's client.
// On failure it has answered with an error page.
func (s *Server) openForm(w http.ResponseWriter, r *http.Request, userID string) (*flow, *vault.Client, bool) {
	if err := r.ParseForm(); err != nil {
		s.refuseAuthorize(w, r, nil, nil, pageError(http.StatusBadRequest, authui.InvalidRequest, err))
		return nil, nil, false
	}
	flowToken := r.PostForm.Get(authui.FieldFlow)
	var f flow
	if err := s.flows.open(flowToken, &f); err != nil {
		s.refuseAuthorize(w, r, nil, nil, pageError(http.StatusBadRequest, authui.SessionExpired, err))
		return nil, nil, false
	}
	binding := s.cookie(r, cookieBrowser)
	if !checkCSRF(s.csrfKey, binding+"\x00"+userID, flowToken, r.PostForm.Get(authui.FieldCSRF)) || binding == "" {
		s.refuseAuthorize(w, r, &f, nil, pageError(http.StatusForbidden, authui.CSRFFailed, errors.New("CSRF token does not match")))
		return nil, nil, false
	}
	c, ok := s.current().clients.get(f.ClientID)
	if !ok {
		s.refuseAuthorize(w, r, &f, nil, pageError(http.StatusBadRequest, authui.UnknownClient, errors.New("client removed during the flow")))
		return nil, nil, false
	}
	logOf(w).clientID = c.ID
	return &f, c, true
}

// handleSignIn is POST /authorize/signin.
func (s *Server) handleSignIn(w http.ResponseWriter, r *http.Request) {
	f, c, ok := s.openForm(w, r, "")
	if !ok {
		return
	}
	now := s.now()
	remote := logOf(w).remote
	name := strings.TrimSpace(r.PostForm.Get(authui.FieldUserName))
	if wait := s.throttle.blocked(remote, now); wait > 0 {
		logOf(w).cause = errors.New("sign-in throttled for the address")
		s.showSignIn(w, r, f, c, signInPage{status: http.StatusTooManyRequests, retryAfter: retryAfterSeconds(wait), userName: name})
		return
	}
	user, err := s.findUser(name)
	if err != nil {
		s.serverErrorPage(w, r, f, err)
		return
	}
	// The throttle key of an unknown name is the name, so that it is
	// throttled as a user would be and the answer tells nothing.
	userKey := "name:" + strings.ToLower(name)
	if user != nil {
		userKey = user.ID
	}
	known := user != nil && s.knownHere(r, user.ID)
	if !known {
		if wait := s.userThrottle.blocked(userKey, now); wait > 0 {
			logOf(w).cause = errors.New("sign-in throttled for the user")
			s.showSignIn(w, r, f, c, signInPage{status: http.StatusTooManyRequests, retryAfter: retryAfterSeconds(wait), userName: name})
			return
		}
	}
	if user, err = s.checkSignIn(name, user, r.PostForm.Get(authui.FieldPassword)); err != nil {
		logOf(w).cause = err
		wait := s.throttle.fail(remote, now)
		if !known {
			wait = max(wait, s.userThrottle.fail(userKey, now))
		}
		retry := 0
		if wait > 0 {
			retry = retryAfterSeconds(wait)
		}
		s.showSignIn(w, r, f, c, signInPage{status: http.StatusUnauthorized, failed: true, retryAfter: retry, userName: name})
		return
	}
	sess := session{UserID: user.ID, AuthTime: now.Unix()}
	if err := s.startSession(w, sess); err != nil {
		s.serverErrorPage(w, r, f, err)
		return
	}
	s.rememberHere(w, r, user.ID)
	f.SignedIn = true
	s.continueFlow(w, r, f, c, &sess)
}

// errSignInFailed is why a sign-in failed, for the log: the page says the
// same for an unknown user, a disabled one and a wrong password.
var errSignInFailed = errors.New("unknown user, disabled user or wrong password")

// findUser reads the user named name; nil if there is none.
func (s *Server) findUser(name string) (*vault.User, error) {
	if name == "" || len(name) > 64 {
		return nil, nil
	}
	var u *vault.User
	err := s.v.View(func(tx *vault.Tx) (err error) {
		u, err = tx.User(name)
		if errors.Is(err, vault.ErrNotFound) || errors.Is(err, vault.ErrInvalidName) {
			u, err = nil, nil
		}
		return err
	})
	return u, err
}

// checkSignIn decides a sign-in: user (nil if unknown) with pw. In
// development mode (serve --dev) any name signs in, without a password,
// and a user of that name is made on first use.
func (s *Server) checkSignIn(name string, user *vault.User, pw string) (*vault.User, error) {
	if s.devSignIn {
		if user != nil {
			return user, nil
		}
		return s.devUser(name)
	}
	hash := s.dummyHash()
	if user != nil && !user.Disabled {
		hash = user.PasswordHash
	}
	if err := password.Verify(hash, pw); err != nil || user == nil || user.Disabled {
		return nil, errSignInFailed
	}
	return user, nil
}

// devUser makes the user of a development sign-in, with a password no one
// knows.
func (s *Server) devUser(name string) (*vault.User, error) {
	if err := vault.ValidateName(name); err != nil {
		return nil, errSignInFailed
	}
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	hash, err := password.Hash(base64.RawURLEncoding.EncodeToString(raw), password.Params{Memory: 64, Time: 1, Threads: 1})
	if err != nil {
		return nil, err
	}
	u := &vault.User{Name: name, DisplayName: name, PasswordHash: hash}
	err = s.v.Update(func(tx *vault.Tx) error {
		existing, err := tx.User(name)
		if err == nil {
			u = existing
			return nil
		}
		return tx.CreateUser(u)
	})
	return u, err
}
