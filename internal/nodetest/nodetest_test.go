package nodetest_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keymint/keymint/internal/flowtest"
	"github.com/keymint/keymint/internal/nodetest"
)

// TestNodeOpenIDClientCredentials: a Node.js application with
// openid-client v6 finds keymint serve from its issuer URL alone, gets a
// token with client_credentials under either client authentication, and
// jose verifies it against the published JWKS as an RFC 9068 access token.
func TestNodeOpenIDClientCredentials(t *testing.T) {
	nodetest.Dir(t) // node and the clients are there, before keymint is built
	k := newKeymint(t)
	k.run(t, "init")
	var c struct {
		ID     string `json:"client_id"`
		Secret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(k.run(t, "client", "new", "node-smoke", "--scope", "invoices:read invoices:write", "-o", "json")), &c); err != nil || c.ID == "" || c.Secret == "" {
		t.Fatalf("client new -o json: %v %+v", err, c)
	}
	issuer := k.serve(t)

	for _, auth := range []string{"post", "basic"} { // openid-client's default, then ClientSecretBasic
		t.Run(auth, func(t *testing.T) {
			var got struct {
				Error    string `json:"error"`
				Metadata struct {
					Issuer        string `json:"issuer"`
					TokenEndpoint string `json:"token_endpoint"`
					JWKSURI       string `json:"jwks_uri"`
				} `json:"metadata"`
				Token struct {
					TokenType string `json:"token_type"`
					ExpiresIn int    `json:"expires_in"`
					Scope     string `json:"scope"`
				} `json:"token"`
				Header map[string]any `json:"header"`
				Claims struct {
					Iss      string `json:"iss"`
					Sub      string `json:"sub"`
					ClientID string `json:"client_id"`
					Scope    string `json:"scope"`
					Iat, Exp int64
					JTI      string `json:"jti"`
				} `json:"claims"`
			}
			nodetest.RunJSON(t, "client_credentials.mjs", map[string]string{
				"ISSUER": issuer, "CLIENT_ID": c.ID, "CLIENT_SECRET": c.Secret, "SCOPE": "invoices:read", "CLIENT_AUTH": auth,
			}, &got)
			if got.Error != "" {
				t.Fatalf("token endpoint: %s", got.Error)
			}

			md := got.Metadata
			if md.Issuer != issuer || md.TokenEndpoint != issuer+"/token" || md.JWKSURI != issuer+"/jwks.json" {
				t.Errorf("discovered %+v, issuer %s", md, issuer)
			}
			// oauth4webapi lowercases token_type.
			if tok := got.Token; !strings.EqualFold(tok.TokenType, "Bearer") || tok.Scope != "invoices:read" || tok.ExpiresIn < 3590 || tok.ExpiresIn > 3600 {
				t.Errorf("token response %+v", tok)
			}
			if h := got.Header; h["typ"] != "at+jwt" || h["alg"] != "ES256" || h["kid"] == "" {
				t.Errorf("JOSE header %v", h)
			}
			cl := got.Claims
			if cl.Iss != issuer || cl.Sub != c.ID || cl.ClientID != c.ID || cl.Scope != "invoices:read" || cl.Exp-cl.Iat != 3600 || cl.JTI == "" {
				t.Errorf("claims %+v", cl)
			}
		})

		t.Run(auth+" with a wrong secret", func(t *testing.T) {
			var got struct {
				Error     string `json:"error"`
				Status    int    `json:"status"`
				Challenge string `json:"challenge"`
			}
			nodetest.RunJSON(t, "client_credentials.mjs", map[string]string{
				"ISSUER": issuer, "CLIENT_ID": c.ID, "CLIENT_SECRET": "kmcs_wrong", "CLIENT_AUTH": auth,
			}, &got)
			if got.Error != "invalid_client" || got.Status != 401 || got.Challenge != "basic" {
				t.Errorf("got %+v, want invalid_client, status 401 with a Basic challenge", got)
			}
		})
	}
}

// keymint is a keymint binary with a private home for its vault.
type keymint struct {
	bin string
	env []string
}

// newKeymint builds keymint into the test's temporary directory. The test
// runs the real binary rather than the command in-process because the
// helpers that run `keymint serve` in-process are package main's own
// (cmd/keymint/serve_test.go); cmd/keymint's process tests build it the
// same way, so Go's build cache serves both.
func newKeymint(t *testing.T) *keymint {
	t.Helper()
	dir := t.TempDir()
	k := &keymint{bin: filepath.Join(dir, "keymint")}
	if err := flowtest.TrackSources(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", k.bin, "github.com/keymint/keymint/cmd/keymint").CombinedOutput(); err != nil {
		t.Fatalf("go build keymint: %v\n%s", err, out)
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KEYMINT_") && !strings.HasPrefix(kv, "XDG_") && !strings.HasPrefix(kv, "HOME=") {
			k.env = append(k.env, kv)
		}
	}
	k.env = append(k.env, "HOME="+dir,
		"XDG_CONFIG_HOME="+filepath.Join(dir, "config"),
		"XDG_DATA_HOME="+filepath.Join(dir, "data"),
		"XDG_STATE_HOME="+filepath.Join(dir, "state"))
	return k
}

func (k *keymint) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, k.bin, args...)
	cmd.Env = k.env
	cmd.WaitDelay = time.Second
	return cmd
}

// run runs a keymint command to completion and returns its stdout.
func (k *keymint) run(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := k.command(ctx, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("keymint %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

var listening = regexp.MustCompile(`^listening on (http://127\.0\.0\.1:[0-9]+)$`)

// serve starts `keymint serve` on a free port and returns its URL, the
// vault's issuer, once it says it listens. The test's cleanup stops it
// with SIGTERM.
func (k *keymint) serve(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	cmd := k.command(ctx, "serve", "--listen", "127.0.0.1:0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("keymint serve: %v", err)
	}
	var log lockedBuffer
	url := make(chan string, 1)
	read := make(chan struct{})
	go func() { // lines until the listening one, then the rest, for failures
		defer close(read)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				url <- m[1]
				break
			}
		}
		io.Copy(&log, stderr)
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
			}
		case <-time.After(20 * time.Second):
			t.Errorf("keymint serve did not stop within 20s of SIGTERM\n%s", log.String())
			cmd.Process.Kill()
			<-exited
		}
	})
	select {
	case u := <-url:
		return u
	case err := <-exited:
		exited <- err // for the cleanup
		t.Fatalf("keymint serve ended before listening: %v\n%s", err, log.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("keymint serve did not say it listens within 30s\n%s", log.String())
	}
	return ""
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
