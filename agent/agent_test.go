package agent

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keymint/keymint/vault"
)

func testLock(b byte) vault.Lock {
	return vault.Lock{ID: bytes.Repeat([]byte{b}, 16), KeyCheck: bytes.Repeat([]byte{b + 1}, 32)}
}

// runtimeDir is a private directory standing in for $XDG_RUNTIME_DIR.
func runtimeDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	if err := os.Chmod(d, 0o700); err != nil {
		t.Fatal(err)
	}
	return d
}

type running struct {
	path string
	ttl  chan time.Time
	done chan error
	key  []byte
}

// start serves lock's key on a fresh socket, with a TTL that ends when the
// test sends on ttl, and checking its socket every 10 ms.
func start(t *testing.T, lock vault.Lock) *running {
	t.Helper()
	dir, err := Dir(runtimeDir(t), true)
	if err != nil {
		t.Fatal(err)
	}
	r := &running{path: SocketPath(dir, lock), ttl: make(chan time.Time, 1), done: make(chan error, 1), key: bytes.Repeat([]byte{0x42}, 32)}
	sock, err := Listen(r.path)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Key: vault.Unlocked{Lock: lock, DataKey: r.key}, Vault: "/v/vault.db", TTL: time.Hour,
		After: func(time.Duration) <-chan time.Time { return r.ttl }, CheckEvery: 10 * time.Millisecond,
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { r.done <- Serve(ctx, sock, cfg) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(5 * time.Second):
			t.Error("the agent did not end")
		}
	})
	return r
}

func (r *running) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("the agent did not end")
		return nil
	}
}

func TestAgentAnswersOnlyItsVault(t *testing.T) {
	lock := testLock(1)
	r := start(t, lock)
	got, err := Key(r.path, lock)
	if err != nil || !bytes.Equal(got, r.key) {
		t.Fatalf("Key with the right lock = %x, %v", got, err)
	}
	stale := vault.Lock{ID: lock.ID, KeyCheck: testLock(7).KeyCheck}
	for _, c := range []struct {
		name string
		lock vault.Lock
		want error
	}{
		{"another vault", testLock(3), ErrOtherVault},
		{"this vault rekeyed", stale, ErrStaleKey},
	} {
		if got, err := Key(r.path, c.lock); !errors.Is(err, c.want) || got != nil {
			t.Errorf("%s: %x, %v; want %v", c.name, got, err, c.want)
		}
	}
	st, err := GetStatus(r.path)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Holds(lock) || st.Holds(stale) || st.Vault != "/v/vault.db" || st.PID != os.Getpid() || !st.Expires.After(st.Started) {
		t.Errorf("status = %+v", st)
	}
}

func TestAgentSocketIsPrivate(t *testing.T) {
	r := start(t, testLock(1))
	fi, err := os.Stat(r.path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want a 0600 socket", fi.Mode())
	}
	di, err := os.Stat(filepath.Dir(r.path))
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm() != 0o700 {
		t.Errorf("socket directory mode %v, want 0700", di.Mode())
	}
	if _, err := Listen(r.path); !errors.Is(err, ErrRunning) {
		t.Errorf("a second agent on the same socket: %v, want ErrRunning", err)
	}
}

// TestAgentEnds: at its TTL, at stop, and when its socket is removed, the
// agent ends, removes its socket (unless gone) and answers no more.
func TestAgentEnds(t *testing.T) {
	for _, c := range []struct {
		name string
		end  func(*running) error
		want error
	}{
		{"ttl", func(r *running) error { r.ttl <- time.Now(); return nil }, ErrExpired},
		{"stop", func(r *running) error { _, err := Stop(r.path); return err }, ErrStopped},
		{"socket removed", func(r *running) error { return os.RemoveAll(filepath.Dir(r.path)) }, ErrSocketGone},
	} {
		t.Run(c.name, func(t *testing.T) {
			lock := testLock(1)
			r := start(t, lock)
			if err := c.end(r); err != nil {
				t.Fatal(err)
			}
			if err := r.wait(t); !errors.Is(err, c.want) {
				t.Errorf("Serve returned %v, want %v", err, c.want)
			}
			if _, err := os.Lstat(r.path); !os.IsNotExist(err) {
				t.Errorf("the socket is still there: %v", err)
			}
			if _, err := Key(r.path, lock); !errors.Is(err, ErrNoAgent) {
				t.Errorf("Key after the end: %v, want ErrNoAgent", err)
			}
		})
	}
}

func TestListenReplacesAStaleSocket(t *testing.T) {
	dir, err := Dir(runtimeDir(t), true)
	if err != nil {
		t.Fatal(err)
	}
	path := SocketPath(dir, testLock(1))
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ln.Close() // a crashed agent leaves its socket file behind
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("the stale socket: %v", err)
	}
	if _, err := Key(path, testLock(1)); !errors.Is(err, ErrNoAgent) {
		t.Errorf("Key on a stale socket: %v, want ErrNoAgent", err)
	}
	ln, err = Listen(path)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	ln.Close()
}

func TestDirRefuses(t *testing.T) {
	open := t.TempDir()
	if err := os.Chmod(open, 0o755); err != nil {
		t.Fatal(err)
	}
	private := runtimeDir(t)
	if err := os.Mkdir(filepath.Join(private, "keymint"), 0o750); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, dir, want string
	}{
		{"unset", "", "XDG_RUNTIME_DIR is not set"},
		{"relative", "run/user", "not an absolute path"},
		{"reachable by others", open, "reachable by others"},
		{"keymint directory reachable by the group", private, "reachable by others"},
		{"missing", filepath.Join(open, "nope"), "no such file"},
	} {
		if _, err := Dir(c.dir, true); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", c.name, err, c.want)
		}
	}
}

func TestPeerAllowed(t *testing.T) {
	if err := peerAllowed(1000, 1000); err != nil {
		t.Errorf("own uid refused: %v", err)
	}
	if err := peerAllowed(0, 1000); err == nil {
		t.Error("another uid (root) allowed")
	}
	if err := peerAllowed(1001, 1000); err == nil {
		t.Error("another uid allowed")
	}
}

func TestReadRequest(t *testing.T) {
	lock := testLock(1)
	good := `{"op":"key","vault_id":"01010101010101010101010101010101","key_check":"` + strings.Repeat("02", 32) + `"}` + "\n"
	for _, c := range []struct {
		name, in string
		ok       bool
	}{
		{"key", good, true},
		{"status", `{"op":"status"}` + "\n", true},
		{"stop", `{"op":"stop"}` + "\n", true},
		{"no newline", `{"op":"status"}`, false},
		{"empty", "", false},
		{"unknown op", `{"op":"dump"}` + "\n", false},
		{"unknown field", `{"op":"status","x":1}` + "\n", false},
		{"two objects", `{"op":"status"}{"op":"stop"}` + "\n", false},
		{"short id", `{"op":"key","vault_id":"01","key_check":"` + strings.Repeat("02", 32) + `"}` + "\n", false},
		{"bad hex", `{"op":"key","vault_id":"zz010101010101010101010101010101","key_check":"` + strings.Repeat("02", 32) + `"}` + "\n", false},
		{"overlong", `{"op":"status","vault_id":"` + strings.Repeat("a", maxLine) + `"}` + "\n", false},
	} {
		req, got, err := readRequest(strings.NewReader(c.in))
		if (err == nil) != c.ok {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if c.ok && req.Op == opKey && !got.Matches(lock) {
			t.Errorf("%s: lock %x/%x", c.name, got.ID, got.KeyCheck)
		}
		if !c.ok && !errors.Is(err, ErrBadRequest) {
			t.Errorf("%s: %v is not ErrBadRequest", c.name, err)
		}
	}
}

func FuzzReadRequest(f *testing.F) {
	f.Add([]byte(`{"op":"key","vault_id":"01010101010101010101010101010101","key_check":"` + strings.Repeat("02", 32) + `"}` + "\n"))
	f.Add([]byte(`{"op":"status"}` + "\n"))
	f.Add([]byte("\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		req, lock, err := readRequest(bytes.NewReader(in))
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("error %v is not ErrBadRequest", err)
			}
			return
		}
		switch req.Op {
		case opKey:
			if len(lock.ID) != 16 || len(lock.KeyCheck) != 32 {
				t.Fatalf("a key request with lock %x/%x", lock.ID, lock.KeyCheck)
			}
		case opStatus, opStop:
		default:
			t.Fatalf("accepted op %q", req.Op)
		}
	})
}

func TestAnyIn(t *testing.T) {
	dir, err := Dir(runtimeDir(t), true)
	if err != nil {
		t.Fatal(err)
	}
	if AnyIn(dir) {
		t.Error("an empty directory holds an agent")
	}
	sock, err := Listen(SocketPath(dir, testLock(1)))
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	if !AnyIn(dir) {
		t.Error("the socket of a running agent is not seen")
	}
}
