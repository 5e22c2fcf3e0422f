package server

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"slices"
	"time"
)

// Cookies of the browser side. All are HttpOnly and SameSite=Lax, and
// Secure when the issuer is https, with the __Host- prefix then (no
// Domain, Path=/, so no other host can set or read them).
const (
	cookieSession = "keymint-session" // sealed session: who signed in, when
	cookieBrowser = "keymint-browser" // random: binds forms to this browser
	cookieKnown   = "keymint-known"   // sealed: users who signed in here
)

// sessionTTL is how long a sign-in lasts without signing in again.
const sessionTTL = 12 * time.Hour

// browserTTL is how long the browser binding and the known users last.
const browserTTL = 90 * 24 * time.Hour

// session is a signed-in user, sealed in the session cookie.
type session struct {
	UserID   string `json:"u"`
	AuthTime int64  `json:"t"`
}

// knownUsers are the users who signed in from one browser, sealed in a
// cookie: the sign-in throttle per user spares them (a device cookie, as
// OWASP calls it), so that guessing a user's password from elsewhere
// cannot lock the user out.
type knownUsers struct {
	IDs []string `json:"u"`
}

// maxKnownUsers bounds the users one browser remembers.
const maxKnownUsers = 8

func (s *Server) cookieName(name string) string {
	if s.secureCookies {
		return "__Host-" + name
	}
	return name
}

func (s *Server) setCookie(w http.ResponseWriter, name, value string, ttl time.Duration) {
	http.SetCookie(w, &http.Cookie{
		Name: s.cookieName(name), Value: value, Path: "/",
		MaxAge: int(ttl / time.Second), HttpOnly: true, Secure: s.secureCookies, SameSite: http.SameSiteLaxMode,
	})
}

func (s *Server) cookie(r *http.Request, name string) string {
	c, err := r.Cookie(s.cookieName(name))
	if err != nil {
		return ""
	}
	return c.Value
}

// sessionOf returns the session of r's browser, or nil.
func (s *Server) sessionOf(r *http.Request) *session {
	sealed := s.cookie(r, cookieSession)
	if sealed == "" {
		return nil
	}
	var sess session
	if err := s.sessions.open(sealed, &sess); err != nil || sess.UserID == "" {
		return nil
	}
	return &sess
}

func (s *Server) startSession(w http.ResponseWriter, sess session) error {
	sealed, err := s.sessions.seal(sess, sessionTTL)
	if err != nil {
		return err
	}
	s.setCookie(w, cookieSession, sealed, sessionTTL)
	return nil
}

func (s *Server) clearSession(w http.ResponseWriter, r *http.Request) {
	if s.cookie(r, cookieSession) != "" {
		s.setCookie(w, cookieSession, "", -time.Second)
	}
}

// browserBinding returns r's browser binding, setting a new one on w when
// there is none: the value forms' CSRF tokens are bound to.
func (s *Server) browserBinding(w http.ResponseWriter, r *http.Request) string {
	if b := s.cookie(r, cookieBrowser); len(b) == 43 {
		return b
	}
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	b := base64.RawURLEncoding.EncodeToString(raw)
	s.setCookie(w, cookieBrowser, b, browserTTL)
	return b
}

// knownHere reports whether user signed in from r's browser before.
func (s *Server) knownHere(r *http.Request, userID string) bool {
	var k knownUsers
	if sealed := s.cookie(r, cookieKnown); sealed == "" || s.known.open(sealed, &k) != nil {
		return false
	}
	return slices.Contains(k.IDs, userID)
}

// rememberHere adds user to the users r's browser knows.
func (s *Server) rememberHere(w http.ResponseWriter, r *http.Request, userID string) {
	var k knownUsers
	if sealed := s.cookie(r, cookieKnown); sealed != "" {
		_ = s.known.open(sealed, &k) // a bad cookie starts afresh
	}
	k.IDs = slices.DeleteFunc(k.IDs, func(id string) bool { return id == userID })
	k.IDs = append(k.IDs, userID)
	if len(k.IDs) > maxKnownUsers {
		k.IDs = k.IDs[len(k.IDs)-maxKnownUsers:]
	}
	if sealed, err := s.known.seal(k, browserTTL); err == nil {
		s.setCookie(w, cookieKnown, sealed, browserTTL)
	}
}
