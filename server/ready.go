package server

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/keymint/keymint/vault"
)

// Readiness.
//
// /healthz is liveness: it says whether the process answers, and 503 only
// while its last poll could not read the vault; an orchestrator that
// restarts on it restarts a process that restarting may fix. /readyz is
// readiness: whether this replica should be sent traffic now, which needs
// more: a poll of the vault that succeeded recently (by the server's
// clock) and a snapshot that serves the generation that poll saw. A load
// balancer takes a replica out of rotation on 503 and back on 200, with no
// restart.

// readyMargin is added to twice the reload interval to give the age a
// successful poll may have before /readyz stops answering 200: time for a
// late tick and a slow read.
const readyMargin = time.Second

// Reasons /readyz gives for 503.
const (
	readyNotLoaded   = "not yet loaded"          // Run has not polled the vault yet
	readyUnreachable = "vault unreachable"       // the last poll could not read the vault
	readyRolledBack  = "vault rolled back"       // the last poll found an older vault
	readyReloading   = "reloading"               // the snapshot is catching up with the vault
	readyStale       = "vault not read recently" // no poll for longer than allowed
)

// pollResult is the outcome of the last poll of the vault.
type pollResult struct {
	// at is the server's clock when the poll read the vault's generation;
	// gen is that generation.
	at  time.Time
	gen uint64
	// reason is why the poll failed, one of the ready* reasons; empty
	// when it succeeded.
	reason string
}

// notePoll records the outcome of a poll that read generation gen at at,
// or failed with err.
func (s *Server) notePoll(at time.Time, gen uint64, err error) {
	p := &pollResult{at: at, gen: gen}
	switch {
	case err == nil:
	case errors.Is(err, vault.ErrRolledBack):
		p.reason = readyRolledBack
	default:
		p.reason = readyUnreachable
	}
	s.lastPoll.Store(p)
}

// readiness returns why the server is not ready at now, or "" if it is.
func (s *Server) readiness(now time.Time) string {
	p := s.lastPoll.Load()
	if p == nil {
		return readyNotLoaded
	}
	served := s.current().generation
	if g := s.reloadingTo.Load(); g > served {
		return readyReloading
	}
	if p.reason != "" {
		return p.reason
	}
	if p.gen > served {
		return readyReloading
	}
	if now.Sub(p.at) > 2*s.reloadInterval+readyMargin {
		return readyStale
	}
	return ""
}

// handleReady is /readyz, readiness: 200 {"status":"ready"} while the last
// poll of the vault succeeded within twice the reload interval and a
// second, and the snapshot serves the generation it saw; otherwise 503
// {"status":"unavailable","reason":...} with Retry-After (the reload
// interval, in whole seconds, at least one). The reasons: "not yet
// loaded" (Run has not polled the vault yet), "vault unreachable",
// "vault rolled back", "reloading" (a newer generation is being read) and
// "vault not read recently" (polls stopped: Run not running, or stuck on
// the vault). /healthz, by contrast, is liveness: see handleHealth.
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h["Cache-Control"] = noStoreValue
	if reason := s.readiness(s.now()); reason != "" {
		h.Set("Retry-After", strconv.Itoa(retryAfterSeconds(s.reloadInterval)))
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": reason})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
