// Package nodetest runs real JavaScript OAuth 2.0 clients from Go tests:
// the scripts in js/, with the libraries that Node.js applications use to
// talk to an authorization server (openid-client v6, oauth4webapi, jose),
// at the exact versions that js/package-lock.json pins. keymint's server is
// built to be used by such clients, so its tests run them, as the server
// package's tests run Python's Authlib.
//
// scripts/test installs the libraries (npm ci in js/ when node_modules is
// missing or older than the lockfile). A machine without Node.js or without
// them fails the test, saying what to run: these tests are never skipped.
//
// A script reads its settings from the environment (secrets never go in
// argv), prints one JSON line with its results on stdout, and exits
// non-zero with a message on stderr when something fails.
package nodetest

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Timeout bounds one script's run.
const Timeout = 30 * time.Second

// Dir returns the absolute path of the node project, internal/nodetest/js,
// failing the test if node is not on $PATH, or the project's installed
// libraries are missing or older than its lockfile. A test calls it first
// to fail before it sets anything up.
func Dir(t testing.TB) string {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("nodetest: node is not on $PATH: these tests run real JavaScript clients and need Node.js 20 or newer with npm; install them, then run ./scripts/test")
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok || !filepath.IsAbs(file) {
		t.Fatalf("nodetest: cannot locate internal/nodetest from its source path %q (built with -trimpath?)", file)
	}
	dir := filepath.Join(filepath.Dir(file), "js")
	lock, err := os.Stat(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		t.Fatalf("nodetest: %v", err)
	}
	installed, err := os.Stat(filepath.Join(dir, "node_modules", ".package-lock.json"))
	switch {
	case err != nil:
		t.Fatalf("nodetest: the node clients are not installed in %s (%v): run ./scripts/test, which runs `npm ci` there, or run it yourself", dir, err)
	case lock.ModTime().After(installed.ModTime()):
		t.Fatalf("nodetest: %s/node_modules is older than its package-lock.json: run ./scripts/test, which runs `npm ci` there, or run it yourself", dir)
	}
	return dir
}

// Run runs `node SCRIPT` in the node project with env added to this
// process's environment, and returns what it printed on stdout. A script
// that fails, or runs longer than Timeout, fails the test with its output.
func Run(t testing.TB, script string, env map[string]string) (stdout string) {
	t.Helper()
	dir := Dir(t)
	if filepath.Base(script) != script || !strings.HasSuffix(script, ".mjs") {
		t.Fatalf("nodetest: script %q: name an .mjs file in %s", script, dir)
	}
	if _, err := os.Stat(filepath.Join(dir, script)); err != nil {
		t.Fatalf("nodetest: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", script)
	cmd.Dir = dir
	cmd.Env = environ(env)
	cmd.WaitDelay = time.Second
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start).Round(time.Millisecond)
	switch {
	case ctx.Err() != nil:
		t.Fatalf("nodetest: node %s did not finish within %s\nstdout: %s\nstderr: %s", script, Timeout, out.String(), errOut.String())
	case err != nil:
		t.Fatalf("nodetest: node %s: %v\nstdout: %s\nstderr: %s", script, err, out.String(), errOut.String())
	}
	t.Logf("nodetest: node %s took %s", script, took)
	return out.String()
}

// RunJSON runs the script as Run does and decodes the one JSON line it
// printed into v.
func RunJSON(t testing.TB, script string, env map[string]string, v any) {
	t.Helper()
	out := Run(t, script, env)
	line := strings.TrimSuffix(out, "\n")
	if line == "" || strings.Contains(line, "\n") {
		t.Fatalf("nodetest: node %s printed %q, want one JSON line", script, out)
	}
	if err := json.Unmarshal([]byte(line), v); err != nil {
		t.Fatalf("nodetest: node %s printed %s: %v", script, line, err)
	}
}

// environ is this process's environment without what would change how
// node finds modules or starts, plus env.
func environ(env map[string]string) []string {
	var out []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if name == "NODE_OPTIONS" || name == "NODE_PATH" {
			continue
		}
		if _, ok := env[name]; !ok {
			out = append(out, kv)
		}
	}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}
