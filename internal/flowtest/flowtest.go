// Package flowtest holds end-to-end tests of the authorization-code flow
// with real browsers and clients against a real `keymint serve` binary: a
// headless Chromium (internal/browsertest) signs in and consents on
// keymint's pages, and golang.org/x/oauth2 with github.com/coreos/go-oidc
// redeems the code, verifies the ID token and refreshes, all on
// 127.0.0.1. The JavaScript clients (openid-client) run the same flow in
// internal/nodetest.
//
// Besides its tests, the package is the harness those tests share: [New]
// builds keymint and gives it a fresh home with a vault, [Keymint.NewClient]
// registers a client with `keymint client new`, [Keymint.AddUser] stores a
// user through the vault API (opened with the identity file that `keymint
// init` wrote), [Keymint.Serve] starts `keymint serve`, and [SignIn] and
// [Allow] are a person's steps on the pages.
//
// A test package that uses [New] builds keymint once for all its tests when
// its TestMain calls [Main]; without it each test builds its own.
package flowtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keymint/keymint/internal/browsertest"
	"github.com/keymint/keymint/password"
	"github.com/keymint/keymint/vault"
)

// Keymint is a keymint binary with a private home (its own config, data
// and state directories), so its vault is the test's alone.
type Keymint struct {
	t    testing.TB
	bin  string
	home string
	env  []string

	// VaultPath and IdentityPath are the vault `keymint init` made and
	// the identity file that unlocks it.
	VaultPath, IdentityPath string
	// URL is the issuer once Serve has started the server.
	URL string

	v   *vault.Vault
	log *lockedBuffer // serve's stderr
}

// Client is a client `keymint client new` registered.
type Client struct {
	ID     string `json:"client_id"`
	Name   string `json:"name"`
	Secret string `json:"client_secret"` // empty for a public client
	Public bool   `json:"public"`
}

// build is the binary Main built for the whole test package.
var build struct {
	sync.Mutex
	dir string // set by Main: build there, once
	bin string
	err error
}

// Main runs the tests of a package that uses New, building keymint once
// for all of them, and removes the binary afterwards:
//
//	func TestMain(m *testing.M) { os.Exit(flowtest.Main(m)) }
func Main(m *testing.M) int {
	dir, err := os.MkdirTemp("", "keymint-flowtest-")
	if err != nil {
		build.err = err
	}
	build.dir = dir
	code := m.Run()
	if dir != "" {
		os.RemoveAll(dir)
	}
	return code
}

// binary returns a keymint binary: the package's, built on first use, when
// Main runs the tests; else one built into the test's temporary directory.
func binary(t testing.TB) string {
	t.Helper()
	build.Lock()
	defer build.Unlock()
	if build.dir == "" {
		return goBuild(t, filepath.Join(t.TempDir(), "keymint"))
	}
	if build.bin == "" && build.err == nil {
		bin := filepath.Join(build.dir, "keymint")
		if build.err = goBuildErr(bin); build.err == nil {
			build.bin = bin
		}
	}
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.bin
}

func goBuild(t testing.TB, bin string) string {
	t.Helper()
	if err := goBuildErr(bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// goBuildErr builds the keymint command of this module to bin. The binary
// is built without -race, as a user's is; Go's build cache serves later
// builds.
func goBuildErr(bin string) error {
	if err := TrackSources(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/keymint/keymint/cmd/keymint")
	if out, err := cmd.CombinedOutput(); err != nil {
		return errors.New("flowtest: go build keymint: " + err.Error() + "\n" + string(out))
	}
	return nil
}

// New builds keymint (see Main), gives it a fresh home, and runs `keymint
// init` there: a new vault and the identity file that unlocks it.
func New(t testing.TB) *Keymint {
	t.Helper()
	home := t.TempDir()
	k := &Keymint{t: t, bin: binary(t), home: home}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KEYMINT_") && !strings.HasPrefix(kv, "XDG_") && !strings.HasPrefix(kv, "HOME=") {
			k.env = append(k.env, kv)
		}
	}
	k.env = append(k.env, "HOME="+home,
		"XDG_CONFIG_HOME="+filepath.Join(home, "config"),
		"XDG_DATA_HOME="+filepath.Join(home, "data"),
		"XDG_STATE_HOME="+filepath.Join(home, "state"))
	k.VaultPath = filepath.Join(home, "data", "keymint", "vault.db")
	k.IdentityPath = filepath.Join(home, "config", "keymint", "identity.txt")
	k.Run("init")
	return k
}

func (k *Keymint) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, k.bin, args...)
	cmd.Env = k.env
	cmd.WaitDelay = time.Second
	return cmd
}

// Run runs a keymint command to completion and returns its stdout,
// failing the test if it fails.
func (k *Keymint) Run(args ...string) string {
	k.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := k.command(ctx, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		k.t.Fatalf("keymint %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// NewClient runs `keymint client new NAME ARGS... -o json` and returns the
// client, with its secret.
func (k *Keymint) NewClient(name string, args ...string) Client {
	k.t.Helper()
	out := k.Run(append([]string{"client", "new", name, "-o", "json"}, args...)...)
	var c Client
	if err := json.Unmarshal([]byte(out), &c); err != nil || c.ID == "" {
		k.t.Fatalf("keymint client new %s: %v: %s", name, err, out)
	}
	if c.Public != (c.Secret == "") {
		k.t.Fatalf("keymint client new %s: public %v with secret %q", name, c.Public, c.Secret)
	}
	return c
}

// Vault returns the vault, unlocked with the identity file `keymint init`
// wrote. Every transaction opens the file and closes it again, so a
// running `keymint serve` sees the changes.
func (k *Keymint) Vault() *vault.Vault {
	k.t.Helper()
	if k.v != nil {
		return k.v
	}
	ids, err := vault.ReadIdentityFile(k.IdentityPath, nil)
	if err != nil {
		k.t.Fatal(err)
	}
	v, err := vault.Open(k.VaultPath, vault.Options{Identities: ids, Actor: "flowtest"})
	if err != nil {
		k.t.Fatalf("open the vault: %v", err)
	}
	k.v = v
	return v
}

// Update runs fn in one write transaction of the vault.
func (k *Keymint) Update(fn func(*vault.Tx) error) {
	k.t.Helper()
	if err := k.Vault().Update(fn); err != nil {
		k.t.Fatal(err)
	}
}

// AddUser stores a user named name with password pw, hashed as `keymint
// user add` hashes (password.Default), and displayName as their name.
func (k *Keymint) AddUser(name, displayName, pw string) *vault.User {
	k.t.Helper()
	hash, err := password.Hash(pw, password.Default)
	if err != nil {
		k.t.Fatal(err)
	}
	u := &vault.User{Name: name, DisplayName: displayName, Email: name + "@example.com", PasswordHash: hash}
	k.Update(func(tx *vault.Tx) error { return tx.CreateUser(u) })
	return u
}

// RevokeGrant revokes the grant userID gave clientID, as `keymint grant
// revoke` does: what it gave stops working.
func (k *Keymint) RevokeGrant(userID, clientID string) {
	k.t.Helper()
	k.Update(func(tx *vault.Tx) error {
		g, err := tx.GrantFor(userID, clientID)
		if err != nil {
			return err
		}
		return tx.RevokeGrant(g.ID)
	})
}

var listening = regexp.MustCompile(`^listening on (http://127\.0\.0\.1:[0-9]+)$`)

// Serve starts `keymint serve` on a free port of 127.0.0.1 and returns its
// URL, the issuer, once it says it listens. The test's cleanup stops it
// with SIGTERM, and shows its log if the test failed.
func (k *Keymint) Serve() string {
	k.t.Helper()
	t := k.t
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	cmd := k.command(ctx, "serve", "--listen", "127.0.0.1:0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("keymint serve: %v", err)
	}
	k.log = &lockedBuffer{}
	log := k.log
	found := make(chan string, 1)
	read := make(chan struct{})
	go func() { // lines until the listening one, then the rest
		defer close(read)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
				break
			}
		}
		io.Copy(log, stderr)
	}()
	exited := make(chan error, 1)
	go func() {
		<-read // Wait closes the pipe: read it all first
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		defer cancel()
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("keymint serve ended with %v\n%s", err, log.String())
			} else if t.Failed() {
				t.Logf("keymint serve's log:\n%s", log.String())
			}
		case <-time.After(20 * time.Second):
			t.Errorf("keymint serve did not stop within 20s of SIGTERM\n%s", log.String())
			cmd.Process.Kill()
			<-exited
		}
	})
	select {
	case u := <-found:
		k.URL = u
		return u
	case err := <-exited:
		exited <- err // for the cleanup
		t.Fatalf("keymint serve ended before listening: %v\n%s", err, log.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("keymint serve did not say it listens within 30s\n%s", log.String())
	}
	return ""
}

// Log returns what `keymint serve` logged so far.
func (k *Keymint) Log() string {
	if k.log == nil {
		return ""
	}
	return k.log.String()
}

// Introspect asks the server's introspection endpoint (RFC 7662), as
// client c (a confidential one), about tok, and returns the answer.
func (k *Keymint) Introspect(c Client, tok string) map[string]any {
	k.t.Helper()
	req, err := http.NewRequest(http.MethodPost, k.URL+"/introspect", strings.NewReader(url.Values{"token": {tok}}.Encode()))
	if err != nil {
		k.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		k.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &out) != nil {
		k.t.Fatalf("introspect: %s: %s", resp.Status, body)
	}
	return out
}

// SignIn is a person signing in on the sign-in page the browser shows:
// user name and password typed, the button clicked. It returns the status
// of the page that follows (the consent page, or the client's callback).
func SignIn(b *browsertest.Browser, name, pw string) int {
	b.Fill("#username", name)
	b.Fill("#password", pw)
	return b.Click("form button[type=submit]")
}

// AllowSelector is the consent page's Allow button.
const AllowSelector = `button[name=decision][value=allow]`

// Allow clicks Allow on the consent page and returns the status of the
// page that follows, the client's callback.
func Allow(b *browsertest.Browser) int { return b.Click(AllowSelector) }

// ConsentScopes returns the scopes the consent page lists, in order.
func ConsentScopes(b *browsertest.Browser) []string {
	return browsertest.Eval[[]string](b, `Array.from(document.querySelectorAll("ul.scopes code"), e => e.textContent)`)
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) WriteString(s string) { l.Write([]byte(s)) }

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
