//go:build unix

package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// wrkRequest is the one request a wrk load repeats.
type wrkRequest struct {
	method  string
	path    string
	headers map[string]string
	body    string
}

// wrkLoad is wrk (https://github.com/wg/wrk), a load tool, sending one
// request over and over to a server until stopped. Its Lua script sorts the
// answers: each 200 is appended to a file as it comes, so the test can follow
// the uses granted while the load runs, and the other statuses are counted
// and printed when wrk stops.
type wrkLoad struct {
	cmd    *exec.Cmd
	dir    string
	stdout bytes.Buffer
	stderr bytes.Buffer
	done   chan struct{}
	err    error
}

// wrkThreads is how many threads a wrk load runs; each writes its own file
// of 200s and prints its own statuses.
const wrkThreads = 2

// wrkSummary is what a stopped wrk load reports.
type wrkSummary struct {
	requests int         // answers received (wrk's "N requests in")
	errors   string      // wrk's socket error line, if any
	statuses map[int]int // answers by status
	granted  int         // 200s, as the files count them
	elapsed  time.Duration
}

// wrkPath finds wrk, or fails the test saying how to install it.
func wrkPath(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("wrk"); err == nil {
		return p
	}
	t.Fatal("wrk is not installed: this test puts keymint serve under load from it. " +
		"Install it with `apt-get install wrk` (scripts/test does so when it runs as root), or run go test -short to leave it out")
	return ""
}

// startWrk starts wrk against base (http://HOST:PORT) with wrkThreads and
// connections connections, sending req until stop. The script, which holds
// the request's credentials, is written 0600 to a test directory: secrets
// never go in argv.
func startWrk(t *testing.T, base string, connections int, req wrkRequest) *wrkLoad {
	t.Helper()
	w := &wrkLoad{dir: t.TempDir(), done: make(chan struct{})}
	script := filepath.Join(w.dir, "load.lua")
	if err := os.WriteFile(script, []byte(wrkScript(t, w.dir, req)), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	w.cmd = exec.CommandContext(ctx, wrkPath(t), "--threads", strconv.Itoa(wrkThreads), "--connections", strconv.Itoa(connections),
		"--duration", "4m", "--timeout", "10s", "--script", script, base+req.path)
	w.cmd.Stdout, w.cmd.Stderr = &w.stdout, &w.stderr
	if err := w.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("wrk: %v", err)
	}
	go func() {
		w.err = w.cmd.Wait()
		cancel()
		close(w.done)
	}()
	t.Cleanup(func() {
		select {
		case <-w.done:
		default:
			w.cmd.Process.Kill()
			<-w.done
		}
	})
	return w
}

// wrkScript is the Lua script for req: the request, and the sorting of the
// answers described at wrkLoad.
func wrkScript(t *testing.T, dir string, req wrkRequest) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "local dir = %s\n", luaString(t, dir))
	fmt.Fprintf(&b, "wrk.method = %s\n", luaString(t, req.method))
	if req.body != "" {
		fmt.Fprintf(&b, "wrk.body = %s\n", luaString(t, req.body))
	}
	for k, v := range req.headers {
		fmt.Fprintf(&b, "wrk.headers[%s] = %s\n", luaString(t, k), luaString(t, v))
	}
	b.WriteString(`
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end

-- Each thread appends a byte per 200 to its own file, flushed at once, and
-- counts every answer by status in globals, which done reads: wrk copies
-- only plain values from a thread.
local granted
function init(args)
  granted = assert(io.open(dir .. "/granted-" .. id, "w"))
  statuses = ""
  counts = {}
end

function response(status, headers, body)
  if status == 200 then
    granted:write("g")
    granted:flush()
  end
  if counts[status] == nil then
    statuses = statuses .. " " .. status
  end
  counts[status] = (counts[status] or 0) + 1
  _G["n" .. status] = counts[status]
end

function done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    local parts = {}
    for s in string.gmatch(thread:get("statuses"), "%d+") do
      parts[#parts + 1] = s .. "=" .. thread:get("n" .. s)
    end
    io.write("statuses: " .. table.concat(parts, " ") .. "\n")
  end
end
`)
	return b.String()
}

// luaString quotes s for Lua; it takes printable ASCII only, which is all
// the tests send.
func luaString(t *testing.T, s string) string {
	t.Helper()
	for _, r := range s {
		if r < ' ' || r > '~' {
			t.Fatalf("wrk script: %q is not printable ASCII", s)
		}
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// granted counts the 200s wrk has received so far.
func (w *wrkLoad) granted() int {
	n := 0
	for id := 1; id <= wrkThreads; id++ {
		if fi, err := os.Stat(filepath.Join(w.dir, "granted-"+strconv.Itoa(id))); err == nil {
			n += int(fi.Size())
		}
	}
	return n
}

var (
	wrkRequests = regexp.MustCompile(`(?m)^\s*([0-9]+) requests in ([0-9.]+\w+),`)
	wrkErrors   = regexp.MustCompile(`(?m)^\s*(Socket errors: .*)$`)
	wrkStatuses = regexp.MustCompile(`(?m)^statuses: (.*)$`)
)

// stop stops wrk as Ctrl-C would, which makes it print its summary, and
// reads that. It does not fail the test itself, so that it can run where
// t.FailNow cannot, such as in a sync.OnceFunc.
func (w *wrkLoad) stop() (wrkSummary, error) {
	if err := w.cmd.Process.Signal(syscall.SIGINT); err != nil {
		return wrkSummary{}, fmt.Errorf("stop wrk: %w", err)
	}
	select {
	case <-w.done:
	case <-time.After(30 * time.Second):
		w.cmd.Process.Kill()
		<-w.done
		return wrkSummary{}, fmt.Errorf("wrk did not stop within 30s of SIGINT:\n%s%s", w.stdout.String(), w.stderr.String())
	}
	out := w.stdout.String()
	if w.err != nil {
		return wrkSummary{}, fmt.Errorf("wrk: %w\n%s%s", w.err, out, w.stderr.String())
	}
	s := wrkSummary{statuses: map[int]int{}, granted: w.granted()}
	m := wrkRequests.FindStringSubmatch(out)
	if m == nil {
		return s, fmt.Errorf("no request count in wrk's output:\n%s%s", out, w.stderr.String())
	}
	s.requests, _ = strconv.Atoi(m[1])
	s.elapsed, _ = time.ParseDuration(m[2])
	if m := wrkErrors.FindStringSubmatch(out); m != nil {
		s.errors = m[1]
	}
	threads := wrkStatuses.FindAllStringSubmatch(out, -1)
	if len(threads) != wrkThreads {
		return s, fmt.Errorf("wrk printed %d threads' statuses, want %d:\n%s%s", len(threads), wrkThreads, out, w.stderr.String())
	}
	for _, th := range threads {
		for _, field := range strings.Fields(th[1]) {
			status, n, ok := strings.Cut(field, "=")
			code, err1 := strconv.Atoi(status)
			count, err2 := strconv.Atoi(n)
			if !ok || err1 != nil || err2 != nil {
				return s, fmt.Errorf("wrk statuses %q: bad field %q", th[1], field)
			}
			s.statuses[code] += count
		}
	}
	return s, nil
}

// listenAddrOutsideEphemeral returns a free 127.0.0.1:PORT below the
// kernel's range of ephemeral ports, for a server that is killed and
// restarted on the same address under load from wrk. A port in that range
// could be taken meanwhile as the source port of one of wrk's reconnection
// attempts: on Linux, a connection to a port nothing listens on can connect
// to itself when the kernel picks that very port as its source.
func listenAddrOutsideEphemeral(t *testing.T) string {
	t.Helper()
	low := 32768 // Linux's default, when the range cannot be read
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				low = n
			}
		}
	}
	const first = 10000
	if low <= first+100 {
		t.Fatalf("the ephemeral port range starts at %d: no room below it for a fixed test port", low)
	}
	for range 100 {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(first+rand.IntN(low-first)))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue // taken; try another
		}
		l.Close()
		return addr
	}
	t.Fatalf("no free port found between %d and %d", first, low)
	return ""
}
