package agent

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/keymint/keymint/vault"
)

// Config is what an agent serves.
type Config struct {
	// Key is the vault's data key and its Lock. Serve copies the key into
	// locked memory; the caller wipes its own copy.
	Key vault.Unlocked
	// Vault is the vault's path, for Status.
	Vault string
	// TTL is how long the agent answers.
	TTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// After is the timer; nil means time.After. Tests end the TTL with it.
	After func(time.Duration) <-chan time.Time
	// CheckEvery is how often the agent checks that its socket is still
	// there (the login manager removes $XDG_RUNTIME_DIR at logout). Zero
	// means every 2 seconds.
	CheckEvery time.Duration
	// Log, if set, is told why the agent ended and of refused requests.
	Log func(format string, args ...any)
}

// Why Serve returns.
var (
	ErrExpired    = errors.New("the agent's time to live ended")
	ErrStopped    = errors.New("the agent was told to stop")
	ErrSocketGone = errors.New("the agent's socket was removed (logout?)")
)

// Serve answers on sock until the TTL ends, a stop request, the socket's
// removal or ctx's end, and returns why. It then wipes the key and removes
// the socket if it is still the one it made.
func Serve(ctx context.Context, sock *Socket, cfg Config) error {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	after := cfg.After
	if after == nil {
		after = time.After
	}
	every := cfg.CheckEvery
	if every <= 0 {
		every = 2 * time.Second
	}
	logf := cfg.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	key, err := newLockedKey(cfg.Key.DataKey)
	if err != nil {
		sock.Close()
		return fmt.Errorf("keep the key: %w", err)
	}
	started := now().UTC()
	status := Status{
		Vault: cfg.Vault, VaultID: hex.EncodeToString(cfg.Key.ID), KeyCheck: hex.EncodeToString(cfg.Key.KeyCheck),
		PID: os.Getpid(), Started: started, Expires: started.Add(cfg.TTL), LockedMemory: key.locked,
	}
	a := &server{key: key, lock: cfg.Key.Lock, status: status, stop: make(chan struct{}), logf: logf}

	var wg sync.WaitGroup
	accepted := make(chan error, 1)
	go func() { accepted <- a.acceptLoop(sock.ln, &wg) }()

	ttl := after(cfg.TTL)
	tick := time.NewTicker(every)
	defer tick.Stop()
	var why error
	for why == nil {
		select {
		case <-ctx.Done():
			why = ctx.Err()
		case <-ttl:
			why = ErrExpired
		case <-a.stop:
			why = ErrStopped
		case err := <-accepted:
			why = fmt.Errorf("accept: %w", err)
		case <-tick.C:
			if sock.gone() {
				why = ErrSocketGone
			}
		}
	}
	sock.Close()
	wg.Wait() // no answer is being written when the key is wiped
	a.mu.Lock()
	key.wipe()
	a.mu.Unlock()
	sock.removeIfOwn()
	logf("agent for %s ended: %v", cfg.Vault, why)
	return why
}

type server struct {
	mu     sync.Mutex // guards key against wipe
	key    *lockedKey
	lock   vault.Lock
	status Status
	stop   chan struct{}
	once   sync.Once
	logf   func(string, ...any)
}

func (a *server) acceptLoop(ln *net.UnixListener, wg *sync.WaitGroup) error {
	for {
		c, err := ln.AcceptUnix()
		if errors.Is(err, net.ErrClosed) {
			return nil
		}
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			a.handle(c)
		}()
	}
}

// handle answers one request.
func (a *server) handle(c *net.UnixConn) {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if err := checkPeer(c); err != nil {
		a.logf("refused a connection: %v", err)
		return
	}
	req, lock, err := readRequest(c)
	var resp response
	switch {
	case err != nil:
		resp.Refused = refusedBadRequest
	case req.Op == opStatus:
		st := a.status
		resp.Status = &st
	case req.Op == opStop:
		a.once.Do(func() { close(a.stop) })
		st := a.status
		resp.Status = &st
	case req.Op == opKey && !bytesEqual(lock.ID, a.lock.ID):
		resp.Refused = refusedOtherVault
	case req.Op == opKey && !lock.Matches(a.lock):
		resp.Refused = refusedStaleKey
	default:
		a.mu.Lock()
		if a.key.bytes() != nil {
			resp.DataKey = append([]byte(nil), a.key.bytes()...)
		}
		a.mu.Unlock()
	}
	b, _ := json.Marshal(resp)
	clear(resp.DataKey)
	_, _ = c.Write(append(b, '\n'))
	clear(b)
}

func bytesEqual(a, b []byte) bool { return string(a) == string(b) }
