package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/keymint/keymint/server"
	"github.com/keymint/keymint/vault"
)

// serving is a `keymint serve` running in this process, through the same
// cobra command as the binary, with a context the test cancels instead of
// a signal.
type serving struct {
	out, err *syncBuffer
	url      string // from the "listening on" line
	cancel   context.CancelFunc
	done     chan error
}

var listeningLine = regexp.MustCompile(`(?m)^listening on (\S+)$`)

// startServe runs `keymint serve ARGS` with env as its environment and
// waits until it listens.
func startServe(t *testing.T, env map[string]string, args ...string) *serving {
	t.Helper()
	s := &serving{out: &syncBuffer{}, err: &syncBuffer{}, done: make(chan error, 1)}
	a := &app{io: &streams{In: strings.NewReader(""), Out: s.out, Err: s.err, inFd: -1}, getenv: func(k string) string { return env[k] }}
	root := newRootCmd(a)
	root.SetArgs(append([]string{"serve"}, args...))
	root.SetOut(s.out)
	root.SetErr(s.err)
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() { s.done <- root.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.done:
		case <-time.After(20 * time.Second):
			t.Error("serve did not stop")
		}
	})
	deadline := time.After(20 * time.Second)
	for {
		if m := listeningLine.FindStringSubmatch(s.err.String()); m != nil {
			s.url = m[1]
			return s
		}
		select {
		case err := <-s.done:
			s.done <- err
			t.Fatalf("serve stopped before listening: %v\nstderr: %s", err, s.err)
		case <-deadline:
			t.Fatalf("serve did not listen\nstderr: %s", s.err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// stop cancels serve, as SIGINT would, and returns its error.
func (s *serving) stop(t *testing.T) error {
	t.Helper()
	s.cancel()
	select {
	case err := <-s.done:
		s.done <- err // for the cleanup
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop")
		return nil
	}
}

// cliEnv is a private environment for keymint commands run in-process.
func cliEnv(t *testing.T) map[string]string {
	dir := t.TempDir()
	return map[string]string{
		"HOME":            dir,
		"XDG_CONFIG_HOME": filepath.Join(dir, "config"),
		"XDG_DATA_HOME":   filepath.Join(dir, "data"),
		"XDG_STATE_HOME":  filepath.Join(dir, "state"),
	}
}

// cli runs a keymint command in-process and returns its stdout.
func cli(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(args, &streams{In: strings.NewReader(""), Out: &out, Err: &errb, inFd: -1}, func(k string) string { return env[k] }); code != 0 {
		t.Fatalf("keymint %s: exit %d: %s", strings.Join(args, " "), code, errb.String())
	}
	return out.String()
}

func TestServeListensOnAChosenPort(t *testing.T) {
	env := cliEnv(t)
	cli(t, env, "init")
	s := startServe(t, env, "--listen", "127.0.0.1:0", "--log-format", "json")
	u, err := url.Parse(s.url)
	if err != nil || u.Scheme != "http" || u.Hostname() != "127.0.0.1" || u.Port() == "0" || u.Port() == "" {
		t.Fatalf("listening on %q", s.url)
	}
	resp, err := http.Get(s.url + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	var md map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&md); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if md["issuer"] != s.url {
		t.Errorf("issuer %v, want the listening URL %s", md["issuer"], s.url)
	}
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
	// Every line after the first is a JSON log record.
	lines := strings.Split(strings.TrimSpace(s.err.String()), "\n")
	for _, line := range lines[1:] {
		if !json.Valid([]byte(line)) {
			t.Errorf("not a JSON log line: %q", line)
		}
	}
	if !strings.Contains(s.err.String(), `"msg":"stopped"`) {
		t.Errorf("no stop record:\n%s", s.err)
	}
}

func TestServeIssuerFromFlagAndEnvironment(t *testing.T) {
	env := cliEnv(t)
	cli(t, env, "init")
	s := startServe(t, env, "--listen", "127.0.0.1:0", "--issuer", "https://auth.example/")
	if got := metadata(t, s.url)["token_endpoint"]; got != "https://auth.example/token" {
		t.Errorf("token_endpoint = %v", got)
	}
	t.Setenv("KEYMINT_ISSUER", "https://env.example") // viper reads the process environment
	s = startServe(t, env, "--listen", "127.0.0.1:0")
	if got := metadata(t, s.url)["issuer"]; got != "https://env.example" {
		t.Errorf("issuer = %v", got)
	}
}

func metadata(t *testing.T, base string) map[string]any {
	t.Helper()
	resp, err := http.Get(base + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var md map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&md); err != nil {
		t.Fatal(err)
	}
	return md
}

// TestServeDev: --dev needs nothing but a free port, prints a working
// client and curl line, and leaves nothing behind.
func TestServeDev(t *testing.T) {
	for _, output := range []string{"text", "json"} {
		t.Run(output, func(t *testing.T) {
			env := cliEnv(t) // no vault, no identity
			s := startServe(t, env, "--dev", "--listen", "127.0.0.1:0", "-o", output)
			var dev devClient
			if output == "json" {
				if err := json.Unmarshal([]byte(s.out.String()), &dev); err != nil {
					t.Fatalf("-o json: %v: %s", err, s.out)
				}
			} else {
				for _, field := range []struct {
					name string
					dst  *string
				}{{"vault", &dev.Vault}, {"client_id", &dev.ClientID}, {"client_secret", &dev.ClientSecret}} {
					m := regexp.MustCompile(`(?m)^\s*` + field.name + `:\s+(\S+)$`).FindStringSubmatch(s.out.String())
					if m == nil {
						t.Fatalf("no %s in:\n%s", field.name, s.out)
					}
					*field.dst = m[1]
				}
				if !strings.Contains(s.out.String(), "curl -u '"+dev.ClientID+":"+dev.ClientSecret+"' -d grant_type=client_credentials "+s.url+"/token") {
					t.Errorf("no curl line for %s in:\n%s", s.url, s.out)
				}
			}
			cfg := clientcredentials.Config{ClientID: dev.ClientID, ClientSecret: dev.ClientSecret, TokenURL: s.url + "/token", Scopes: []string{"api:read"}}
			tok, err := cfg.Token(context.Background())
			if err != nil {
				t.Fatalf("dev client: %v", err)
			}
			if tok.Extra("scope") != "api:read" {
				t.Errorf("scope %v", tok.Extra("scope"))
			}
			if _, err := os.Stat(dev.Vault); err != nil {
				t.Fatalf("dev vault: %v", err)
			}
			if err := s.stop(t); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Dir(dev.Vault)); !os.IsNotExist(err) {
				t.Errorf("dev vault directory left behind: %v", err)
			}
			if strings.Contains(s.err.String(), dev.ClientSecret) || strings.Contains(s.err.String(), tok.AccessToken) {
				t.Error("the log carries the secret or the token")
			}
			if _, err := os.Stat(filepath.Join(env["XDG_DATA_HOME"], "keymint")); !os.IsNotExist(err) {
				t.Errorf("--dev touched the default vault directory: %v", err)
			}
		})
	}
}

// TestServeTLS serves HTTPS with a certificate from files.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSignedCert(t, dir)
	s := startServe(t, cliEnv(t), "--dev", "-o", "json", "--listen", "127.0.0.1:0", "--tls-cert", certFile, "--tls-key", keyFile)
	if !strings.HasPrefix(s.url, "https://127.0.0.1:") {
		t.Fatalf("listening on %s", s.url)
	}
	var dev devClient
	if err := json.Unmarshal([]byte(s.out.String()), &dev); err != nil {
		t.Fatal(err)
	}
	if dev.Issuer != s.url {
		t.Errorf("issuer %s, want %s", dev.Issuer, s.url)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, client)
	cfg := clientcredentials.Config{ClientID: dev.ClientID, ClientSecret: dev.ClientSecret, TokenURL: s.url + "/token"}
	if _, err := cfg.Token(ctx); err != nil {
		t.Fatalf("token over TLS: %v", err)
	}
	// Plain HTTP on the TLS port gets nothing useful.
	resp, err := http.Post("http"+strings.TrimPrefix(s.url, "https")+"/token", "application/x-www-form-urlencoded", strings.NewReader("grant_type=client_credentials"))
	if err == nil {
		if resp.StatusCode == 200 {
			t.Error("plain HTTP request on the TLS port succeeded")
		}
		resp.Body.Close()
	}
}

func selfSignedCert(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "keymint test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, pool
}

// TestServeGracefulShutdown: a request in flight when shutdown begins is
// answered, and the uses it made reach the vault before serve returns.
func TestServeGracefulShutdown(t *testing.T) {
	env := cliEnv(t)
	cli(t, env, "init")
	var created clientJSON
	if err := json.Unmarshal([]byte(cli(t, env, "client", "new", "erp", "-o", "json")), &created); err != nil {
		t.Fatal(err)
	}
	s := startServe(t, env, "--listen", "127.0.0.1:0")

	conn, err := net.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := url.Values{"grant_type": {"client_credentials"}, "client_id": {created.ClientID}, "client_secret": {created.ClientSecret}}.Encode()
	head := "POST /token HTTP/1.1\r\nHost: keymint\r\nContent-Type: application/x-www-form-urlencoded\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n"
	// Send all but the end of the body: the request is in flight.
	if _, err := conn.Write([]byte(head + body[:10])); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	s.cancel() // SIGINT
	time.Sleep(200 * time.Millisecond)
	select {
	case err := <-s.done:
		t.Fatalf("serve returned with a request in flight: %v", err)
	default:
	}
	// New connections are refused meanwhile.
	if c, err := net.DialTimeout("tcp", strings.TrimPrefix(s.url, "http://"), time.Second); err == nil {
		c.Close()
		t.Error("a new connection was accepted during shutdown")
	}
	if _, err := conn.Write([]byte(body[10:])); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("in-flight request: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("in-flight request: %s", resp.Status)
	}
	if err := s.stop(t); err != nil {
		t.Fatalf("serve: %v", err)
	}
	// The last use was written on the way out.
	var shown clientJSON
	if err := json.Unmarshal([]byte(cli(t, env, "client", "show", "erp", "-o", "json")), &shown); err != nil {
		t.Fatal(err)
	}
	if shown.LastUsedAt == nil {
		t.Error("last_used_at not written on shutdown")
	}
}

// TestServeRefuses: bad flags and unusable vaults fail before listening,
// with one line that says what to do.
func TestServeRefuses(t *testing.T) {
	env := cliEnv(t)
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--listen", "0.0.0.0:8080"}, exitUsage, "not a loopback address"},
		{[]string{"--listen", "192.0.2.1:8080"}, exitUsage, "--insecure-listen"},
		{[]string{"--listen", ":8080", "--insecure-listen"}, exitUsage, "give --issuer"},
		{[]string{"--listen", "8080"}, exitUsage, "HOST:PORT"},
		{[]string{"--tls-key", "k.pem"}, exitUsage, "go together"},
		{[]string{"--log-format", "xml"}, exitUsage, "text or json"},
		{[]string{"--issuer", "auth.example"}, exitUsage, "--issuer"},
		{[]string{"--issuer", "https://auth.example/#x"}, exitUsage, "fragment"},
		{[]string{"extra"}, exitUsage, ""},
		{[]string{"--trusted-proxy", "bogus"}, exitUsage, `invalid --trusted-proxy "bogus"`},
		{[]string{"--trusted-proxy", "10.0.0.0/8", "--trusted-proxy", "fe80::1%eth0"}, exitUsage, "--trusted-proxy"},
		{[]string{"--listen", "127.0.0.1:0"}, exitFailure, "no vault"},
		{[]string{"--listen", "127.0.0.1:0", "--dev", "--tls-cert", "nope.pem", "--tls-key", "nope.pem"}, exitFailure, "tls"},
	}
	for _, tt := range tests {
		var out, errb bytes.Buffer
		code := run(append([]string{"serve"}, tt.args...), &streams{In: strings.NewReader(""), Out: &out, Err: &errb, inFd: -1}, func(k string) string { return env[k] })
		if code != tt.code || !strings.Contains(errb.String(), tt.want) || strings.Count(errb.String(), "\n") != 1 {
			t.Errorf("serve %v: exit %d, stderr %q; want exit %d mentioning %q", tt.args, code, errb.String(), tt.code, tt.want)
		}
		if strings.Contains(errb.String(), "listening") {
			t.Errorf("serve %v listened", tt.args)
		}
	}
}

// TestParseTrustedProxy: --trusted-proxy takes a CIDR, or an IP as the
// prefix of that one address.
func TestParseTrustedProxy(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1":              "127.0.0.1/32",
		"10.0.0.0/8":             "10.0.0.0/8",
		"10.1.2.3/8":             "10.0.0.0/8",
		"::1":                    "::1/128",
		"2001:db8::/32":          "2001:db8::/32",
		"::ffff:192.0.2.1":       "192.0.2.1/32",
		"bogus":                  "",
		"":                       "",
		"10.0.0.0/33":            "",
		"fe80::1%eth0":           "",
		"127.0.0.1:8080":         "",
		"http://127.0.0.1":       "",
		"10.0.0.0/8,10.1.0.0/16": "",
	} {
		p, err := parseTrustedProxy(in)
		switch {
		case want == "" && err == nil:
			t.Errorf("parseTrustedProxy(%q) = %s, want an error", in, p)
		case want == "":
			var ue usageError
			if !errors.As(err, &ue) {
				t.Errorf("parseTrustedProxy(%q): %v is not a usage error", in, err)
			}
		case err != nil || p.String() != want:
			t.Errorf("parseTrustedProxy(%q) = %s, %v; want %s", in, p, err, want)
		}
	}
}

// TestServeNeedsASigningKey: a vault without one is refused with a hint.
func TestServeNeedsASigningKey(t *testing.T) {
	env := cliEnv(t)
	id, err := vault.GenerateIdentityFile(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "vault.db")
	if err := vault.Create(path, vault.CreateOptions{Recipients: []vault.Recipient{id.Recipient}}); err != nil {
		t.Fatal(err)
	}
	env["KEYMINT_IDENTITY"] = string(id.Contents) // comments and the identity line
	var out, errb bytes.Buffer
	code := run([]string{"serve", "--listen", "127.0.0.1:0", "--vault", path}, &streams{In: strings.NewReader(""), Out: &out, Err: &errb, inFd: -1}, func(k string) string { return env[k] })
	if code != exitFailure || !strings.Contains(errb.String(), "no active signing key") || !strings.Contains(errb.String(), "`keymint signing-key rotate`") {
		t.Errorf("exit %d: %s", code, errb.String())
	}
}

// cmdFreeport NAME sets $NAME to a TCP port free on 127.0.0.1 now, for a
// server the script starts in the background.
func cmdFreeport(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: freeport NAME")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	_, port, err := net.SplitHostPort(ln.Addr().String())
	ts.Check(err)
	ts.Check(ln.Close())
	ts.Setenv(args[0], port)
}

// cmdWaitport HOST:PORT waits up to 20s until something listens there.
func cmdWaitport(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitport HOST:PORT")
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", args[0], time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("nothing listens on %s: %v", args[0], err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestServeHelpListsRoutes: serve's help lists the server's routes from
// server.Routes, the table the server serves, each on its line.
func TestServeHelpListsRoutes(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"serve", "--help"}, &streams{In: strings.NewReader(""), Out: &out, Err: &errb, inFd: -1}, func(string) string { return "" })
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, r := range server.Routes() {
		re := regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(r.Method) + ` +` + regexp.QuoteMeta(r.Path) + ` +` + regexp.QuoteMeta(r.Summary) + `$`)
		if !re.MatchString(out.String()) {
			t.Errorf("help lacks %s %s: %s", r.Method, r.Path, out.String())
		}
	}
}
