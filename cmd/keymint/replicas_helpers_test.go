//go:build unix

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keymint/keymint/vault/etcdtest"
)

// replicaSet is what TestReplicasOnEtcd runs: an etcd cluster holding the
// vault, keymint serve replicas on it, each with a state directory of its
// own as on separate machines, and nginx in front of them.
type replicaSet struct {
	// top is the whole test, which owns the processes.
	top  *testing.T
	etcd *etcdtest.Cluster
	// url is the vault's etcd:// URL.
	url string
	// admin is the CLI on the etcd vault, with a state directory of its own.
	admin *keymintEnv
	// addrs are the replicas' fixed HOST:PORTs, which nginx's upstream
	// names; envs their environments.
	addrs []string
	envs  []*keymintEnv
	// serves are the replicas' current processes; all every process ever
	// started, for the check of their logs.
	mu     sync.Mutex
	serves []*serveProcess
	all    []*serveProcess
	// gw is nginx's base URL.
	gw string
	hc *http.Client
	// xff numbers the client addresses direct probes claim to come from.
	xff atomic.Uint32
}

// startReplicaSet copies the vault of file into the cluster at url and
// starts three replicas on it, each with a state directory of its own.
func startReplicaSet(t *testing.T, file *keymintEnv, cluster *etcdtest.Cluster, url string) *replicaSet {
	t.Helper()
	copier := &keymintEnv{bin: file.bin, vault: file.vault, state: file.state, env: append(slices.Clone(file.env),
		"KEYMINT_ETCD_MAX_TXN_OPS="+strconv.Itoa(etcdtest.MaxTxnOps),
		"KEYMINT_ETCD_MAX_REQUEST_BYTES="+strconv.Itoa(etcdtest.MaxRequestBytes))}
	out := copier.ok(t, "", "vault", "copy", "--to", url)
	if !strings.Contains(out, "the copy verifies whole") {
		t.Fatalf("vault copy --to %s: %q", url, out)
	}
	rs := &replicaSet{
		top:   t,
		etcd:  cluster,
		url:   url,
		admin: etcdEnvOf(file, url, ""),
		hc:    &http.Client{Timeout: 10 * time.Second},
	}
	t.Cleanup(rs.hc.CloseIdleConnections)
	for len(rs.addrs) < 3 {
		if a := listenAddrOutsideEphemeral(t); !slices.Contains(rs.addrs, a) {
			rs.addrs = append(rs.addrs, a)
		}
	}
	rs.serves = make([]*serveProcess, len(rs.addrs))
	for i := range rs.addrs {
		rs.envs = append(rs.envs, etcdEnvOf(file, url, filepath.Join(t.TempDir(), "state")))
		rs.startReplica(t, i)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for i, l := range rs.logs() {
				t.Logf("replica process %d's log (last part):\n%s", i, tail(l, 1500))
			}
		}
	})
	return rs
}

// etcdEnv is env with the vault at url and the settings an etcdtest
// cluster needs, and its own state directory when state is not "".
func etcdEnvOf(e *keymintEnv, url, state string) *keymintEnv {
	var env []string
	for _, kv := range e.env {
		if state != "" && strings.HasPrefix(kv, "XDG_STATE_HOME=") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env,
		"KEYMINT_VAULT="+url,
		"KEYMINT_ETCD_MAX_TXN_OPS="+strconv.Itoa(etcdtest.MaxTxnOps),
		"KEYMINT_ETCD_MAX_REQUEST_BYTES="+strconv.Itoa(etcdtest.MaxRequestBytes),
		// Shorter than the default 5s, so that a stopped cluster is told
		// within the test's time, yet ample for a loaded machine.
		"KEYMINT_ETCD_TIMEOUT="+replicaEtcdTimeout.String(),
	)
	out := &keymintEnv{bin: e.bin, vault: url, state: e.state}
	if state != "" {
		env = append(env, "XDG_STATE_HOME="+state)
		out.state = filepath.Join(state, "keymint")
	}
	out.env = env
	return out
}

const replicaEtcdTimeout = 2 * time.Second

// startReplica starts replica i on its address and waits until it is ready.
// The process belongs to the whole test (rs.top), not to t, which may be a
// subtest that restarts a replica for the subtests after it; rs.top's
// cleanup kills it if it is still running then.
func (rs *replicaSet) startReplica(t *testing.T, i int) *serveProcess {
	t.Helper()
	s := launchServe(t, rs.top, rs.envs[i], "--listen", rs.addrs[i], "--trusted-proxy", "127.0.0.1")
	rs.mu.Lock()
	rs.serves[i] = s
	rs.all = append(rs.all, s)
	rs.mu.Unlock()
	if s.url != "http://"+rs.addrs[i] {
		t.Fatalf("replica %d listens on %s, want %s", i, s.url, rs.addrs[i])
	}
	if d, ok := rs.waitReady(i, http.StatusOK, 30*time.Second); !ok {
		t.Fatalf("replica %d not ready within %v of its start\n%s", i, d, tail(s.stderr.String(), 2000))
	}
	return s
}

// waitAllReady waits, for every replica at once, until its /readyz answers
// want, and returns how long each took (negative: not within).
func (rs *replicaSet) waitAllReady(want int, within time.Duration) []time.Duration {
	out := make([]time.Duration, len(rs.addrs))
	var wg sync.WaitGroup
	for i := range rs.addrs {
		wg.Go(func() {
			d, ok := rs.waitReady(i, want, within)
			if !ok {
				d = -1
			}
			out[i] = d
		})
	}
	wg.Wait()
	return out
}

// replica returns replica i's current process.
func (rs *replicaSet) replica(i int) *serveProcess {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.serves[i]
}

// ready asks replica i's /readyz, and returns its status code (0 when it
// does not answer) and its Retry-After.
func (rs *replicaSet) ready(i int) (int, string) {
	resp, _, err := roundTrip(rs.hc, mustRequest(http.MethodGet, "http://"+rs.addrs[i]+"/readyz", nil))
	if err != nil {
		return 0, ""
	}
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

// waitReady polls replica i's /readyz until it answers want, and returns
// how long that took.
func (rs *replicaSet) waitReady(i, want int, within time.Duration) (time.Duration, bool) {
	start := time.Now()
	for {
		if code, _ := rs.ready(i); code == want {
			return time.Since(start), true
		}
		if time.Since(start) > within {
			return time.Since(start), false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// logs returns every replica process's log so far.
func (rs *replicaSet) logs() []string {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	var out []string
	for _, s := range rs.all {
		out = append(out, s.stderr.String())
	}
	return out
}

// replicaClientJSON and replicaKeyJSON are what `client new` and `key new` print with
// -o json.
type replicaClientJSON struct {
	ID     string `json:"client_id"`
	Name   string `json:"name"`
	Secret string `json:"client_secret"`
}

type replicaKeyJSON struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Secret string `json:"secret"`
}

func newClientJSON(t *testing.T, e *keymintEnv, args ...string) replicaClientJSON {
	t.Helper()
	out := e.ok(t, "", append(append([]string{"client", "new"}, args...), "-o", "json")...)
	var c replicaClientJSON
	if err := json.Unmarshal([]byte(out), &c); err != nil || c.ID == "" || c.Secret == "" {
		t.Fatalf("client new %s -o json: %v\n%s", strings.Join(args, " "), err, out)
	}
	return c
}

func newKeyJSON(t *testing.T, e *keymintEnv, args ...string) replicaKeyJSON {
	t.Helper()
	out := e.ok(t, "", append(append([]string{"key", "new"}, args...), "-o", "json")...)
	var k replicaKeyJSON
	if err := json.Unmarshal([]byte(out), &k); err != nil || k.ID == "" || k.Secret == "" {
		t.Fatalf("key new %s -o json: %v\n%s", strings.Join(args, " "), err, out)
	}
	return k
}

// dayUsage returns the daily use count and limit `usage show NAME -o json`
// shows.
func dayUsage(t *testing.T, e *keymintEnv, name string) (used, limit int64) {
	t.Helper()
	r, ok, out := usageIn(t, e, name, "day")
	if !ok {
		t.Fatalf("usage show %s has no row for the day:\n%s", name, out)
	}
	if r.Limit == nil {
		t.Fatalf("usage show %s: no limit for the day:\n%s", name, out)
	}
	if r.Remaining == nil || *r.Remaining != max(*r.Limit-r.Used, 0) {
		t.Errorf("usage show %s: remaining %v with %d used of %d", name, r.Remaining, r.Used, *r.Limit)
	}
	return r.Used, *r.Limit
}

func mustRequest(method, url string, body io.Reader) *http.Request {
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		panic(err)
	}
	return req
}

// startReplicaNginx runs nginx in the foreground with
// testdata/nginx/replicas.conf, an upstream of the replicas at addrs, and
// returns its base URL; the test's cleanup stops it.
func startReplicaNginx(t *testing.T, nginxBin string, addrs []string) string {
	t.Helper()
	return runNginx(t, nginxBin, "replicas.conf", func(dir, listen string) any {
		return map[string]any{"Dir": dir, "Listen": listen, "Replicas": addrs}
	})
}

// A quotaRun drives one limited credential to its limit through nginx and
// from the CLI at once, and counts what every caller was told.
type quotaRun struct {
	rs    *replicaSet
	kind  string // "token" (a client at POST /token) or "verify" (a key at GET /verify)
	name  string
	id    string
	secr  string
	limit int

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// phase tags each outcome: the scenario's own stages.
	phase atomic.Int32
	// pace is how long each HTTP worker waits between requests (none by
	// default), so that a run lasts long enough for what happens mid-load.
	pace time.Duration

	mu sync.Mutex
	// n counts outcomes by source (a replica's address, "nginx" for nginx's
	// own answers, "cli") and outcome.
	n map[string]*[4]int
	// byPhase counts grants by phase.
	byPhase [4]int
	granted int
	// lastGrant is when the latest grant was answered; lastDenied, per
	// source, when the latest refusal over quota was asked.
	started    time.Time
	lastGrant  time.Time
	lastDenied map[string]time.Time
	unexpected map[string]int
	// firstUnavailable and lastUnavailable bound the answers 503 or 502.
	firstUnavailable, lastUnavailable time.Time
	// sample is one access token granted, for the log check.
	sample string
	// retryAfter503 counts 503s with a Retry-After of at least 1 second,
	// and all503 every 503 from a replica.
	retryAfter503, all503 int
}

func newQuotaRun(rs *replicaSet, kind, name, id, secret string, limit int) *quotaRun {
	q := &quotaRun{rs: rs, kind: kind, name: name, id: id, secr: secret, limit: limit,
		n: map[string]*[4]int{}, lastDenied: map[string]time.Time{}, unexpected: map[string]int{}}
	q.ctx, q.cancel = context.WithTimeout(context.Background(), 3*time.Minute)
	return q
}

func (q *quotaRun) add(src string, o loadOutcome, asked time.Time, detail string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	c := q.n[src]
	if c == nil {
		c = new([4]int)
		q.n[src] = c
	}
	c[o]++
	switch o {
	case outGranted:
		q.granted++
		q.byPhase[q.phase.Load()]++
		q.lastGrant = time.Now()
	case outDenied:
		if asked.After(q.lastDenied[src]) {
			q.lastDenied[src] = asked
		}
	case outUnavailable:
		if q.firstUnavailable.IsZero() {
			q.firstUnavailable = time.Now()
		}
		q.lastUnavailable = time.Now()
	case outUnexpected:
		if _, seen := q.unexpected[detail]; seen || len(q.unexpected) < 20 {
			q.unexpected[detail]++
		}
	}
}

// start starts httpWorkers callers through nginx and cliWorkers CLI loops.
func (q *quotaRun) start(httpWorkers, cliWorkers int) {
	q.mu.Lock()
	q.started = time.Now()
	q.lastGrant = q.started
	q.mu.Unlock()
	hc := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: httpWorkers}}
	for w := range httpWorkers {
		q.wg.Go(func() {
			defer hc.CloseIdleConnections()
			for q.ctx.Err() == nil {
				asked := time.Now()
				src, o, detail := q.httpOnce(hc, w)
				if q.ctx.Err() != nil {
					return // cut short by the end of the run
				}
				q.add(src, o, asked, detail)
				if o == outUnavailable {
					time.Sleep(10 * time.Millisecond)
				}
				if q.pace > 0 {
					time.Sleep(q.pace)
				}
			}
		})
	}
	for range cliWorkers {
		q.wg.Go(func() {
			for q.ctx.Err() == nil {
				asked := time.Now()
				o, detail := q.cliOnce()
				if q.ctx.Err() != nil && o != outGranted {
					return // killed by the end of the run
				}
				q.add("cli", o, asked, detail)
				if o != outGranted {
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
}

// stop ends the load and waits for it.
func (q *quotaRun) stop() {
	q.cancel()
	q.wg.Wait()
}

// httpOnce sends one request through nginx and says which replica answered
// and what it said.
func (q *quotaRun) httpOnce(hc *http.Client, worker int) (src string, o loadOutcome, detail string) {
	var req *http.Request
	if q.kind == "token" {
		req = mustRequest(http.MethodPost, q.rs.gw+"/token", strings.NewReader("grant_type=client_credentials"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(q.id, q.secr)
	} else {
		req = mustRequest(http.MethodGet, q.rs.gw+"/verify", nil)
		req.Header.Set("Authorization", "Bearer "+q.secr)
	}
	// Each worker is a client of its own behind nginx.
	req.Header.Set("X-Forwarded-For", "192.0.2."+strconv.Itoa(1+worker))
	req = req.WithContext(q.ctx)
	resp, body, err := roundTrip(hc, req)
	if err != nil {
		if q.ctx.Err() != nil {
			return "nginx", outUnavailable, ""
		}
		return "nginx", outUnexpected, "no answer from nginx: " + err.Error()
	}
	src = "nginx"
	if up := resp.Header.Get("X-Keymint-Upstream"); up != "" {
		parts := strings.Split(up, ", ")
		src = parts[len(parts)-1]
	}
	what := q.kind
	switch resp.StatusCode {
	case http.StatusOK:
		if q.kind == "token" {
			var tok struct {
				AccessToken string `json:"access_token"`
			}
			if err := json.Unmarshal(body, &tok); err != nil || tok.AccessToken == "" {
				return src, outUnexpected, fmt.Sprintf("/token 200 without a token: %q", body)
			}
			q.mu.Lock()
			if q.sample == "" {
				q.sample = tok.AccessToken
			}
			q.mu.Unlock()
		} else if got := resp.Header.Get("X-Keymint-Key-Id"); got != q.id {
			return src, outUnexpected, fmt.Sprintf("/verify 200 with key id %q, want %q", got, q.id)
		}
		if l := resp.Header.Get("RateLimit-Limit"); l != strconv.Itoa(q.limit) {
			return src, outUnexpected, fmt.Sprintf("%s 200 with RateLimit-Limit %q, want %d", what, l, q.limit)
		}
		return src, outGranted, ""
	case http.StatusTooManyRequests:
		if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || n < 1 {
			return src, outUnexpected, fmt.Sprintf("%s 429 with Retry-After %q", what, resp.Header.Get("Retry-After"))
		}
		if r := resp.Header.Get("RateLimit-Remaining"); r != "0" {
			return src, outUnexpected, fmt.Sprintf("%s 429 with RateLimit-Remaining %q", what, r)
		}
		if q.kind == "token" {
			var e struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
				return src, outUnexpected, fmt.Sprintf("/token 429 without an RFC 6749 error: %q", body)
			}
		}
		return src, outDenied, ""
	case http.StatusServiceUnavailable:
		q.mu.Lock()
		q.all503++
		if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && n >= 1 {
			q.retryAfter503++
		}
		q.mu.Unlock()
		return src, outUnavailable, ""
	case http.StatusBadGateway, http.StatusGatewayTimeout:
		// nginx's own: a replica died with the request sent.
		return src, outUnavailable, ""
	}
	return src, outUnexpected, fmt.Sprintf("%s through nginx: %s %q", what, resp.Status, tail(string(body), 200))
}

// cliOnce runs the CLI's use of the credential once.
func (q *quotaRun) cliOnce() (loadOutcome, string) {
	args := []string{"token", "issue", "--client", q.name}
	stdin := ""
	if q.kind == "verify" {
		args, stdin = []string{"key", "verify"}, q.secr
	}
	cmd := q.rs.admin.command(q.ctx, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := -1
	if cmd.ProcessState != nil {
		code = cmd.ProcessState.ExitCode()
	}
	over := fmt.Sprintf("over quota: %s has used %d of %d uses today", q.name, q.limit, q.limit)
	switch {
	case err == nil && q.kind == "token" && strings.HasPrefix(stdout.String(), "eyJ"):
		return outGranted, ""
	case err == nil && q.kind == "verify" && strings.HasPrefix(stdout.String(), "valid: key "+q.name+" "):
		return outGranted, ""
	case code == 1 && strings.Contains(stderr.String(), over):
		return outDenied, ""
	case code == 1 && strings.Contains(stderr.String(), "etcd unavailable: none of "):
		return outUnavailable, ""
	}
	return outUnexpected, fmt.Sprintf("keymint %s: %v: stdout %q stderr %q", strings.Join(args, " "), err,
		tail(stdout.String(), 200), tail(stderr.String(), 400))
}

// grantedSoFar is how many uses were granted.
func (q *quotaRun) grantedSoFar() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.granted
}

func (q *quotaRun) unexpectedCount() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for _, c := range q.unexpected {
		n += c
	}
	return n
}

// waitGranted waits until at least n uses were granted.
func (q *quotaRun) waitGranted(n int, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if q.grantedSoFar() >= n {
			return true
		}
		if q.unexpectedCount() >= 10 {
			return false
		}
		time.Sleep(2 * time.Millisecond)
	}
	return false
}

// leaseLapse is how long after the last grant every source must have been
// refused for the run to be settled: longer than a lease or a denial lasts
// (quota.DefaultMaxAge, 1s), so that every replica has asked the vault
// again, given back what it held and been refused.
const leaseLapse = 1500 * time.Millisecond

// waitSettled waits until every source in sources (replicas by address,
// and "cli") was refused over quota when asked more than leaseLapse after
// the last grant: every path sees only 429s.
func (q *quotaRun) waitSettled(sources []string, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if q.unexpectedCount() >= 10 {
			return false
		}
		q.mu.Lock()
		settled := time.Since(q.lastGrant) > leaseLapse
		for _, s := range sources {
			if !q.lastDenied[s].After(q.lastGrant.Add(leaseLapse)) {
				settled = false
			}
		}
		q.mu.Unlock()
		if settled {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// report logs the counts and fails the test for each unexpected answer.
func (q *quotaRun) report(t *testing.T) {
	t.Helper()
	q.mu.Lock()
	defer q.mu.Unlock()
	var b strings.Builder
	for _, src := range slices.Sorted(maps.Keys(q.n)) {
		c := q.n[src]
		fmt.Fprintf(&b, "\n  %-16s %4d granted %6d refused over quota %5d unavailable %3d unexpected", src, c[outGranted], c[outDenied], c[outUnavailable], c[outUnexpected])
	}
	t.Logf("%s %s: %d granted in %v:%s", q.kind, q.name, q.granted, q.lastGrant.Sub(q.started).Round(time.Millisecond), b.String())
	for _, u := range slices.Sorted(maps.Keys(q.unexpected)) {
		t.Errorf("%s: unexpected, %d times: %s", q.name, q.unexpected[u], u)
	}
}

// count returns the outcomes o of src.
func (q *quotaRun) count(src string, o loadOutcome) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	if c := q.n[src]; c != nil {
		return c[o]
	}
	return 0
}

// probeClient is a client address for a direct probe of a replica, new
// each time, so that probes that fail authentication on purpose (a key not
// yet there, a secret just rotated) are never throttled as one client's
// failures.
func (rs *replicaSet) probeClient() string {
	n := rs.xff.Add(1)
	return fmt.Sprintf("10.%d.%d.%d", (n>>16)&0xff, (n>>8)&0xff, n&0xff)
}

// verifyStatus asks replica i's /verify about key.
func (rs *replicaSet) verifyStatus(i int, key string) int {
	req := mustRequest(http.MethodGet, "http://"+rs.addrs[i]+"/verify", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("X-Forwarded-For", rs.probeClient())
	resp, _, err := roundTrip(rs.hc, req)
	if err != nil {
		return 0
	}
	return resp.StatusCode
}

// tokenStatus asks replica i's /token for a token for id with secret.
func (rs *replicaSet) tokenStatus(i int, id, secret string) int {
	req := mustRequest(http.MethodPost, "http://"+rs.addrs[i]+"/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	req.Header.Set("X-Forwarded-For", rs.probeClient())
	resp, _, err := roundTrip(rs.hc, req)
	if err != nil {
		return 0
	}
	return resp.StatusCode
}

// propagation runs change (a CLI command) and polls every replica with
// probe every 2ms until it answers want, and returns, per replica, the
// time from the CLI's exit until then, and the CLI's own run time.
func (rs *replicaSet) propagation(t *testing.T, change func() string, probe func(i int, state string) int, want int, within time.Duration) (after []time.Duration, cli time.Duration) {
	t.Helper()
	began := time.Now()
	state := change()
	ended := time.Now()
	cli = ended.Sub(began)
	after = make([]time.Duration, len(rs.addrs))
	var wg sync.WaitGroup
	for i := range rs.addrs {
		wg.Go(func() {
			last := 0
			for time.Since(ended) < within {
				if last = probe(i, state); last == want {
					after[i] = time.Since(ended)
					return
				}
				time.Sleep(2 * time.Millisecond)
			}
			after[i] = -1
			t.Errorf("replica %d still answers %d, not %d, %v after the CLI's change", i, last, want, within)
		})
	}
	wg.Wait()
	return after, cli
}

// metrics returns the lines of replica i's /metrics that start with
// prefix, histogram buckets left out.
func (rs *replicaSet) metrics(i int, prefix string) string {
	resp, body, err := roundTrip(rs.hc, mustRequest(http.MethodGet, "http://"+rs.addrs[i]+"/metrics", nil))
	if err != nil {
		return err.Error()
	}
	if resp.StatusCode != http.StatusOK {
		return resp.Status
	}
	var out []string
	for l := range strings.Lines(string(body)) {
		if strings.HasPrefix(l, prefix) && !strings.Contains(l, "_bucket{") {
			out = append(out, strings.TrimRight(l, "\n"))
		}
	}
	return strings.Join(out, "\n")
}
