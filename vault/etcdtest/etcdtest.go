// Package etcdtest starts real etcd clusters for tests: one or more `etcd`
// processes on 127.0.0.1, each in its own directory under t.TempDir(),
// stopped when the test ends. It runs the etcd binary on PATH (or Debian's
// /usr/bin/etcd, package etcd-server); scripts/test installs it.
//
// Members start with transaction limits far above etcd's defaults
// ([MaxTxnOps], [MaxRequestBytes]), because a vault migration or rekey
// commits thousands of keys in one transaction; a store talking to a
// cluster started here should be configured with the same limits.
package etcdtest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The limits every member starts with (--max-txn-ops, --max-request-bytes).
const (
	MaxTxnOps       = 1000000
	MaxRequestBytes = 32 << 20
)

// InstallHint says how to get the etcd binary, for a test that cannot find
// it.
const InstallHint = "etcd is not installed: install Debian's etcd-server (apt-get install etcd-server) or put etcd on PATH; scripts/test installs it"

// startTimeout bounds how long a member may take to become healthy. etcd
// 3.4 starts in well under a second; the slack is for loaded CI machines.
const startTimeout = 30 * time.Second

// Binary returns the path of the etcd binary: etcd on PATH, else
// /usr/bin/etcd.
func Binary() (string, error) {
	if p, err := exec.LookPath("etcd"); err == nil {
		return p, nil
	}
	const debian = "/usr/bin/etcd"
	if _, err := os.Stat(debian); err == nil {
		return debian, nil
	}
	return "", errors.New(InstallHint)
}

// Cluster is a running etcd cluster of one or more members.
type Cluster struct {
	bin     string
	token   string
	tls     *TLSFiles // nil: plain connections
	mu      sync.Mutex
	members []*member
}

type member struct {
	tls            bool
	name           string
	dir            string
	clientPort     int
	peerPort       int
	cmd            *exec.Cmd
	exited         chan struct{} // closed when cmd has been waited for
	logPath        string
	initialCluster string
}

// Start starts a cluster of members etcd processes and waits until every
// member reports itself healthy. The cluster stops when t ends. A missing
// etcd binary is a test failure, not a skip: the suite must run it.
func Start(t testing.TB, members int) *Cluster {
	t.Helper()
	c, err := StartCluster(t.TempDir(), members)
	if err != nil {
		t.Fatalf("etcdtest: %v", err)
	}
	t.Cleanup(c.Stop)
	return c
}

// StartCluster is [Start] for a caller that manages the cluster's lifetime
// itself (one cluster shared by a whole test binary): it starts members in
// dir and returns the running cluster, which the caller must [Cluster.Stop].
func StartCluster(dir string, members int) (*Cluster, error) {
	return startCluster(dir, members, nil)
}

func startCluster(dir string, members int, tlsFiles *TLSFiles) (*Cluster, error) {
	if members < 1 {
		return nil, fmt.Errorf("a cluster needs at least one member, not %d", members)
	}
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	c := &Cluster{bin: bin, token: "keymint-test-" + strconv.Itoa(os.Getpid()) + "-" + filepath.Base(dir), tls: tlsFiles}
	ports, err := freePorts(2 * members)
	if err != nil {
		return nil, err
	}
	var initial []string
	for i := range members {
		m := &member{
			name:       "m" + strconv.Itoa(i),
			dir:        filepath.Join(dir, "m"+strconv.Itoa(i)),
			tls:        tlsFiles != nil,
			clientPort: ports[2*i],
			peerPort:   ports[2*i+1],
		}
		m.logPath = m.dir + ".log"
		initial = append(initial, m.name+"="+m.peerURL())
		c.members = append(c.members, m)
	}
	for _, m := range c.members {
		m.initialCluster = strings.Join(initial, ",")
		if err := c.launch(m); err != nil {
			c.Stop()
			return nil, err
		}
	}
	for _, m := range c.members {
		if err := c.waitHealthy(m); err != nil {
			c.Stop()
			return nil, err
		}
	}
	return c, nil
}

func (m *member) clientURL() string {
	scheme := "http"
	if m.tls {
		scheme = "https"
	}
	return scheme + "://127.0.0.1:" + strconv.Itoa(m.clientPort)
}
func (m *member) peerURL() string { return "http://127.0.0.1:" + strconv.Itoa(m.peerPort) }

// Endpoints returns every member's client address (host:port), as a
// client's endpoint list.
func (c *Cluster) Endpoints() []string {
	out := make([]string, len(c.members))
	for i, m := range c.members {
		out[i] = "127.0.0.1:" + strconv.Itoa(m.clientPort)
	}
	return out
}

// Kill kills member i with SIGKILL, as a crash would, and waits until it is
// gone.
func (c *Cluster) Kill(i int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.kill(c.members[i])
}

// Restart starts member i again on its data directory and ports (after
// [Cluster.Kill] or [Cluster.Stop]) and waits until it is healthy.
func (c *Cluster) Restart(i int) error {
	c.mu.Lock()
	m := c.members[i]
	c.kill(m)
	err := c.launch(m)
	c.mu.Unlock()
	if err != nil {
		return err
	}
	return c.waitHealthy(m)
}

// Stop kills every member. It is safe to call more than once.
func (c *Cluster) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.members {
		c.kill(m)
	}
}

func (c *Cluster) kill(m *member) {
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGKILL)
	<-m.exited
	m.cmd = nil
}

// launch starts m's process. Its output goes to a log file beside its data
// directory, which a failure to start quotes.
func (c *Cluster) launch(m *member) error {
	log, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("etcd log: %w", err)
	}
	defer log.Close()
	args := []string{
		"--name", m.name,
		"--data-dir", m.dir,
		"--listen-client-urls", m.clientURL(),
		"--advertise-client-urls", m.clientURL(),
		"--listen-peer-urls", m.peerURL(),
		"--initial-advertise-peer-urls", m.peerURL(),
		"--initial-cluster", m.initialCluster,
		"--initial-cluster-state", "new",
		"--initial-cluster-token", c.token,
		"--max-txn-ops", strconv.Itoa(MaxTxnOps),
		"--max-request-bytes", strconv.Itoa(MaxRequestBytes),
		// Shorter than the defaults (100ms, 1s), so that a cluster elects a
		// new leader quickly after a test kills one, yet long enough not to
		// flap under the race detector.
		"--heartbeat-interval", "50",
		"--election-timeout", "500",
		"--logger", "zap",
		"--log-level", "warn",
	}
	if c.tls != nil {
		args = append(args, "--cert-file", c.tls.serverCert, "--key-file", c.tls.serverKey,
			"--trusted-ca-file", c.tls.CA, "--client-cert-auth")
	}
	cmd := exec.Command(c.bin, args...)
	cmd.Env = etcdEnv()
	cmd.Stdout, cmd.Stderr = log, log
	// A test binary that dies (a timeout, a panic) takes its members with
	// it rather than leaving them running.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start etcd member %s: %w", m.name, err)
	}
	m.cmd = cmd
	m.exited = make(chan struct{})
	go func(exited chan struct{}) {
		_ = cmd.Wait()
		close(exited)
	}(m.exited)
	return nil
}

// etcdEnv is the environment for a member: the test's, without ETCD_*
// variables (ETCD_UNSUPPORTED_ARCH, or a developer's own settings, would
// change how a member starts).
func etcdEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ETCD_") {
			env = append(env, kv)
		}
	}
	return env
}

// waitHealthy polls m's /health endpoint until it answers healthy (the
// member has joined a cluster with a leader), or fails if m exits or
// takes too long.
func (c *Cluster) waitHealthy(m *member) error {
	c.mu.Lock()
	exited := m.exited
	c.mu.Unlock()
	client := &http.Client{Timeout: time.Second}
	if c.tls != nil {
		cfg, err := c.tls.clientTLS()
		if err != nil {
			return err
		}
		client.Transport = &http.Transport{TLSClientConfig: cfg}
		defer client.CloseIdleConnections()
	}
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("etcd member %s exited while starting:\n%s", m.name, tail(m.logPath))
		default:
		}
		if resp, err := client.Get(m.clientURL() + "/health"); err == nil {
			var body bytes.Buffer
			_, _ = body.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(body.String(), `"health":"true"`) {
				return nil
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	return fmt.Errorf("etcd member %s not healthy after %v:\n%s", m.name, startTimeout, tail(m.logPath))
}

// tail returns the end of a log file, for an error message.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// freePorts returns n distinct TCP ports free on 127.0.0.1 now. Another
// process could take one before etcd binds it; that is rare enough for
// tests, and then the member fails to start with a clear log.
func freePorts(n int) ([]int, error) {
	var ports []int
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
