package server_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/keymint/keymint/server"
	"github.com/keymint/keymint/vault"
)

// eventually polls cond until it holds, for at most ten seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// runServer runs se's server until the test ends.
func runServer(t *testing.T, se *storeEnv) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- se.srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// TestChangesNotification: with a reload interval of an hour, a key made
// through another Vault on the same store (another replica) is served as
// soon as a change notification arrives, and the watch lag is measured.
func TestChangesNotification(t *testing.T) {
	changes := make(chan int64)
	se := newStoreEnv(t, func(o *server.Options) {
		o.ReloadInterval = time.Hour
		o.Changes = changes
	})
	runServer(t, se)
	// Run polls once at start: ready without waiting for the ticker.
	eventually(t, "the first poll", func() bool { code, _, _ := se.ready(t); return code == http.StatusOK })

	k := se.addKey(t, se.openAgain(t), vault.Key{Credential: vault.Credential{Name: "fresh", Scopes: []string{"api:read"}}})
	if code, _ := se.verifyStatus(t, k.secret); code != http.StatusUnauthorized {
		t.Fatalf("/verify of a key made elsewhere, before any notification: %d, want 401", code)
	}
	changes <- 42
	eventually(t, "the key to be served", func() bool { code, _ := se.verifyStatus(t, k.secret); return code == http.StatusOK })
	if partial, full := server.ReloadCounts(se.srv); partial != 1 || full != 0 {
		t.Errorf("reloads: %d partial, %d full; want 1 partial", partial, full)
	}
	if got := se.scrape(t).value("keymint_vault_watch_lag_seconds"); got != 1 {
		t.Errorf("watch lag observed %v times, want 1", got)
	}

	// A usage-only commit (a lease) notifies too: one generation read,
	// no reload.
	if code, _ := se.verifyStatus(t, se.meterKey.secret); code != http.StatusOK {
		t.Fatal("/verify")
	}
	changes <- 43
	changes <- 44 // accepted once the previous one was: the poll ran or is due
	if partial, full := server.ReloadCounts(se.srv); partial != 1 || full != 0 {
		t.Errorf("reloads after usage-only commits: %d partial, %d full; want 1 partial", partial, full)
	}
	if code, body, _ := se.ready(t); code != http.StatusOK {
		t.Errorf("/readyz: %d %v", code, body)
	}
}

// TestChangesCoalesce: notifications that arrive while a reload runs make
// one more poll, not one each.
func TestChangesCoalesce(t *testing.T) {
	changes := make(chan int64)
	se := newStoreEnv(t, func(o *server.Options) {
		o.ReloadInterval = time.Hour
		o.Changes = changes
	})
	views := &se.store.views
	runServer(t, se)
	eventually(t, "the first poll", func() bool { code, _, _ := se.ready(t); return code == http.StatusOK })

	// The store reads of a poll that finds nothing changed.
	v0 := views.Load()
	changes <- 1
	eventually(t, "a poll", func() bool { return views.Load() > v0 })
	time.Sleep(20 * time.Millisecond)
	perPoll := views.Load() - v0

	other := se.openAgain(t)
	se.addKey(t, other, vault.Key{Credential: vault.Credential{Name: "first", Scopes: []string{"api:read"}}})
	reached, release := se.store.holdChangeLog()
	defer release()
	changes <- 2
	<-reached
	// While that reload is held: another change, and many notifications.
	k := se.addKey(t, other, vault.Key{Credential: vault.Credential{Name: "second", Scopes: []string{"api:read"}}})
	v1 := views.Load()
	for i := range 50 {
		changes <- int64(3 + i)
	}
	release()
	eventually(t, "the second key to be served", func() bool { code, _ := se.verifyStatus(t, k.secret); return code == http.StatusOK })
	time.Sleep(50 * time.Millisecond) // time for any further poll to show
	if partial, _ := server.ReloadCounts(se.srv); partial != 2 {
		t.Errorf("partial reloads: %d, want 2", partial)
	}
	// The held reload's own reads, and one more poll with its reload.
	if extra := views.Load() - v1; extra > 4*perPoll+4 {
		t.Errorf("50 notifications during a reload cost %d store reads; a poll costs %d: not coalesced", extra, perPoll)
	}
}
