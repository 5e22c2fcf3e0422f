package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keymint/keymint/apikey"
)

type found struct {
	line, col int
	secret    string
}

func scanAll(t testing.TB, input string, size int) []found {
	t.Helper()
	var out []found
	if err := scanStreamSize(strings.NewReader(input), size, func(line, col int, s string) {
		out = append(out, found{line, col, s})
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// scanByLines is the reference scanStream must agree with: each whole
// line scanned in one piece.
func scanByLines(input string) []found {
	var out []found
	for i, line := range strings.Split(input, "\n") {
		scanPiece([]byte(line), 0, true, func(start int, s string) { out = append(out, found{i + 1, start + 1, s}) })
	}
	return out
}

func mustGenerate(t testing.TB, prefix string) string {
	t.Helper()
	s, err := apikey.Generate(prefix)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// lookAlike is a string of a secret's shape whose checksum is wrong.
func lookAlike(r *rand.Rand, prefix string) string {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	for {
		b := []byte(prefix + "_")
		for range secretLen {
			b = append(b, alphabet[r.IntN(62)])
		}
		if _, err := apikey.Parse(string(b)); err != nil {
			return string(b)
		}
	}
}

// TestScanStreamFormats: secrets in JSON, YAML, .env, shell history, git
// patches, URLs and glued to other text are found at their line and byte
// column, in pieces of any size; mistyped, truncated and look-alike ones
// are not.
func TestScanStreamFormats(t *testing.T) {
	km, cs, rt, other := mustGenerate(t, "km"), mustGenerate(t, "kmcs"), mustGenerate(t, "kmrt"), mustGenerate(t, "acme2")
	typo := []byte(km)
	typo[10] ^= 1 // a letter's case flipped, or a digit changed: still base62
	r := rand.New(rand.NewPCG(1, 2))
	lines := []struct {
		text   string
		secret string // "" when nothing may be found
	}{
		{`{"api_key": "` + km + `", "n": 1}`, km},
		{`client_secret: ` + cs, cs},
		{`API_KEY=` + km, km},
		{`export TOKEN='` + rt + `'`, rt},
		{`: 1764560000:0;curl -H "Authorization: Bearer ` + other + `" https://x`, other},
		{`+    "refresh": "` + rt + `",`, rt},
		{`https://user:` + cs + `@example.com/`, cs},
		{`XYZ` + km + `,`, km},    // uppercase before: not a prefix character
		{`key_` + km, km},         // an identifier's '_' before it
		{string(typo), ""},        // mistyped
		{km[:len(km)-1], ""},      // truncated
		{lookAlike(r, "km"), ""},  // the shape, not the checksum
		{strings.ToUpper(km), ""}, // typed in capitals
		{`km_` + strings.Repeat("a", 48), ""},
	}
	var b strings.Builder
	var want []found
	for i, l := range lines {
		b.WriteString(l.text + "\n")
		if l.secret != "" {
			want = append(want, found{i + 1, strings.Index(l.text, l.secret) + 1, l.secret})
		}
	}
	input := b.String()
	for _, size := range []int{16, 17, 31, 64, 67, 100, 4096, 64 << 10} {
		if got := scanAll(t, input, size); !slices.Equal(got, want) {
			t.Errorf("pieces of %d bytes: found %v, want %v", size, got, want)
		}
	}
	// CRLF line ends change nothing.
	if got := scanAll(t, strings.ReplaceAll(input, "\n", "\r\n"), 64); !slices.Equal(got, want) {
		t.Errorf("CRLF: found %v, want %v", got, want)
	}
}

// TestScanStreamLongLine: a minified file of one long line with secrets
// anywhere in it, across the seams of the pieces it is read in.
func TestScanStreamLongLine(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var b strings.Builder
	var want []found
	for i := 0; b.Len() < 300<<10; i++ {
		if i%50 == 7 {
			s := mustGenerate(t, "km")
			b.WriteString(`"k":"`)
			want = append(want, found{1, b.Len() + 1, s})
			b.WriteString(s + `",`)
			continue
		}
		b.WriteString(`"x":"` + lookAlike(r, "km") + `_a",`)
	}
	for _, size := range []int{16, 100, 4096, 64 << 10} {
		if got := scanAll(t, b.String(), size); !slices.Equal(got, want) {
			t.Errorf("pieces of %d bytes: found %d secrets, want %d", size, len(got), len(want))
		}
	}
}

// TestScanNoFalsePositives: 50,000 random strings of a secret's shape, with
// every prefix a secret may have, find nothing.
func TestScanNoFalsePositives(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	var b strings.Builder
	prefixes := []string{"km", "kmcs", "kmrt", "a", "abcdefghijklmnop"}
	for i := range 50000 {
		b.WriteString(lookAlike(r, prefixes[i%len(prefixes)]))
		b.WriteByte(" \n\t,"[i%4])
	}
	if got := scanAll(t, b.String(), 64<<10); len(got) != 0 {
		t.Fatalf("found %d secrets among look-alikes: %v", len(got), got)
	}
}

// FuzzScanStream: whatever the input and piece size, scanStream finds what
// scanning each whole line finds; each secret found parses, is where it
// is said to be, and is hidden by apikey.Mask of its line.
func FuzzScanStream(f *testing.F) {
	s := mustGenerate(f, "km")
	f.Add([]byte("API_KEY="+s+"\n"), uint8(0))
	f.Add([]byte(`{"a":"`+s+`","b":"`+s+"\"}\r\n"), uint8(20))
	f.Add([]byte("x_"+s+s+"\n_"+s), uint8(5))
	f.Add([]byte("km_abc\x00\n"+strings.Repeat("_", 100)), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, size uint8) {
		input := string(data)
		got := scanAll(t, input, 16+int(size))
		if want := scanByLines(input); !slices.Equal(got, want) {
			t.Fatalf("in pieces of %d: %v, whole lines: %v", 16+int(size), got, want)
		}
		lines := strings.Split(input, "\n")
		for _, g := range got {
			if _, err := apikey.Parse(g.secret); err != nil {
				t.Fatalf("found %q, which does not parse: %v", g.secret, err)
			}
			line := lines[g.line-1]
			if !strings.HasPrefix(line[g.col-1:], g.secret) {
				t.Fatalf("found %q at %d:%d, where it is not", g.secret, g.line, g.col)
			}
			if strings.Contains(apikey.Mask(line), g.secret) {
				t.Fatalf("apikey.Mask leaves %q showing in its line", g.secret)
			}
		}
	})
}

// scanRecord is one line of `scan -o json`.
type scanRecord struct {
	File   string `json:"file"`
	Line   int    `json:"line"`
	Column int    `json:"column"`
	Secret string `json:"secret"`
	Status string `json:"status"`
	Kind   string `json:"kind"`
	ID     string `json:"id"`
	Name   string `json:"name"`
	Action string `json:"action"`
}

func jsonLines(t *testing.T, out string) []scanRecord {
	t.Helper()
	var recs []scanRecord
	for line := range strings.Lines(out) {
		var r scanRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("not JSON Lines: %q: %v", line, err)
		}
		recs = append(recs, r)
	}
	return recs
}

// TestScanTree is the test: a scan over a generated tree with
// planted live, revoked (removed), retired, expired and mistyped secrets
// and random look-alikes finds exactly the live ones as live, exit 1;
// --revoke --yes removes exactly their credentials; the scan then finds
// none live, exit 0. No secret is ever printed.
func TestScanTree(t *testing.T) {
	env := cliEnv(t)
	clock := &testClock{t: time.Now().UTC().Truncate(time.Second)}
	km := func(stdin string, args ...string) (string, string, int) {
		t.Helper()
		return runAt(env, clock.Now, stdin, args...)
	}
	must := func(args ...string) string {
		t.Helper()
		out, errs, code := km("", args...)
		if code != exitOK {
			t.Fatalf("keymint %s: exit %d: %s", strings.Join(args, " "), code, errs)
		}
		return out
	}
	secretOf := func(args ...string) (secret, id string) {
		t.Helper()
		var v struct{ ID, Secret, ClientID, ClientSecret string }
		out := must(append(args, "-o", "json")...)
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatal(err)
		}
		if v.Secret == "" {
			var c struct {
				ID     string `json:"client_id"`
				Secret string `json:"client_secret"`
			}
			if err := json.Unmarshal([]byte(out), &c); err != nil {
				t.Fatal(err)
			}
			return c.Secret, c.ID
		}
		return v.Secret, v.ID
	}
	must("init")
	live1, live1ID := secretOf("key", "new", "live1")
	live2, live2ID := secretOf("key", "new", "live2")
	liveClient, liveClientID := secretOf("client", "new", "erp")
	removed, _ := secretOf("key", "new", "gone")
	must("key", "rm", "gone", "--yes")
	retired, _ := secretOf("key", "new", "rotated")
	must("key", "rotate", "rotated", "--grace", "1s")
	expired, _ := secretOf("key", "new", "brief", "--expires", "1s")
	clock.Add(2 * time.Second)
	typo := []byte(live1)
	typo[20] ^= 1
	foreign := mustGenerate(t, "acme")
	allSecrets := []string{live1, live2, liveClient, removed, retired, expired, foreign}

	// The tree: each file holds look-alikes, and some a planted secret
	// on a known line.
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(7, 8))
	type plant struct {
		file, secret, status string
	}
	plants := []plant{
		{".env", live1, "live"},
		{"config/app.json", liveClient, "live"},
		{"deploy/values.yaml", live2, "live"},
		{"home/.bash_history", live1, "live"},
		{"patches/0001.patch", live2, "live"},
		{".git/config", liveClient, "live"},
		{"old/creds.txt", removed, "unknown"},
		{"old/rotated.env", retired, "retired"},
		{"old/brief.env", expired, "expired"},
		{"vendor/other.yaml", foreign, "unknown"},
		{"notes/typo.md", string(typo), ""},
		{"notes/random.txt", "", ""},
	}
	templates := map[string]string{
		".env": "API_KEY=%s\n", ".json": `{"client": {"secret": "%s"}}` + "\n", ".yaml": "api:\n  key: %s\n",
		".bash_history": "curl -H 'X-API-Key: %s' https://api\n", ".patch": "+KEYMINT_KEY=%s\n",
		"config": "[remote \"origin\"]\n\turl = https://ci:%s@git.example\n", ".txt": "%s\n", ".md": "`%s`\n",
	}
	type place struct {
		file      string
		line, col int
	}
	want := map[place]string{}
	for _, p := range plants {
		var b strings.Builder
		line := 1
		for i := range 30 {
			fmt.Fprintf(&b, "x%d = %s\n", i, lookAlike(r, []string{"km", "kmcs", "kmrt"}[i%3]))
			line++
			if i == 12 && p.secret != "" {
				tmpl := templates[filepath.Ext(p.file)]
				if tmpl == "" {
					tmpl = templates[filepath.Base(p.file)]
				}
				text := fmt.Sprintf(tmpl, p.secret)
				at := strings.Index(text, p.secret)
				l := line + strings.Count(text[:at], "\n")
				col := at - strings.LastIndex(text[:at], "\n")
				b.WriteString(text)
				line += strings.Count(text, "\n")
				if p.status != "" {
					want[place{filepath.Join(dir, p.file), l, col}] = p.status
				}
			}
		}
		writeFile(t, filepath.Join(dir, p.file), b.String())
	}
	// Skipped: git's objects, and binary files (a NUL byte).
	writeFile(t, filepath.Join(dir, ".git", "objects", "ab", "cdef"), live1+"\n")
	writeFile(t, filepath.Join(dir, "bin", "blob"), "\x00\x01"+live1+"\n")

	out, errs, code := km("", "scan", dir, "-o", "json")
	if code != exitFailure {
		t.Fatalf("scan: exit %d, want 1: %s", code, errs)
	}
	got := map[place]string{}
	for _, rec := range jsonLines(t, out) {
		got[place{rec.File, rec.Line, rec.Column}] = rec.Status
		if rec.Status == "live" && rec.ID != live1ID && rec.ID != live2ID && rec.ID != liveClientID {
			t.Errorf("live secret of %s %s (%s): not one planted", rec.Kind, rec.Name, rec.ID)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("found:\n%v\nwant:\n%v", got, want)
	}
	for _, s := range allSecrets {
		if strings.Contains(out+errs, s) || strings.Contains(out+errs, s[len(s)-20:]) {
			t.Fatalf("a secret is shown in the scan's output")
		}
	}
	if !strings.Contains(errs, "found 6 live secrets in 6 files") {
		t.Errorf("stderr %q does not count the live secrets", errs)
	}

	// Without a terminal, --revoke needs --yes; with it, exactly the live
	// credentials go, and their removal is audited.
	if _, errs, code := km("", "scan", "--revoke", dir); code != exitUsage || !strings.Contains(errs, "--yes") {
		t.Fatalf("--revoke without a terminal: exit %d, %q; want 2 asking for --yes", code, errs)
	}
	out, _, code = km("", "scan", "--revoke", "--yes", dir, "-o", "json")
	if code != exitFailure {
		t.Fatalf("scan --revoke: exit %d, want 1 (the files still hold them)", code)
	}
	var removedIDs []string
	for _, rec := range jsonLines(t, out) {
		if rec.Action == "removed" {
			removedIDs = append(removedIDs, rec.ID)
		}
	}
	slices.Sort(removedIDs)
	wantIDs := []string{live1ID, live2ID, liveClientID}
	slices.Sort(wantIDs)
	if !slices.Equal(removedIDs, wantIDs) {
		t.Errorf("removed %v, want %v", removedIDs, wantIDs)
	}
	keys := must("key", "ls", "-o", "json")
	if strings.Contains(keys, live1ID) || strings.Contains(keys, live2ID) || !strings.Contains(keys, `"rotated"`) {
		t.Errorf("after --revoke, keys: %s", keys)
	}
	audit := must("audit", "ls", "--action", "key.delete", "--action", "client.delete", "-o", "json")
	for _, id := range wantIDs {
		if !strings.Contains(audit, id) {
			t.Errorf("no audit entry for the removal of %s: %s", id, audit)
		}
	}
	if _, errs, code := km("", "scan", dir); code != exitOK {
		t.Fatalf("scan after --revoke: exit %d: %s", code, errs)
	}
}

// TestScanRevokeAsks: on a terminal, --revoke asks, and only "y" or "yes"
// goes ahead; --grace rotates instead, printing the new secret once.
func TestScanRevokeAsks(t *testing.T) {
	env := cliEnv(t)
	cli(t, env, "init")
	secret := strings.TrimSpace(cli(t, env, "key", "new", "leaked"))
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.env"), "K="+secret+"\n")
	term := func(answer string, args ...string) (string, string, int) {
		var out, errb bytes.Buffer
		a := &app{io: &streams{In: strings.NewReader(answer), Out: &out, Err: &errb, inFd: -1, inTTY: true}, getenv: func(k string) string { return env[k] }, now: time.Now}
		code := a.run(args)
		return out.String(), errb.String(), code
	}
	if _, errs, code := term("n\n", "scan", "--revoke", dir); code != exitFailure || !strings.Contains(errs, "not confirmed") {
		t.Fatalf("answer n: exit %d, %q", code, errs)
	}
	out, errs, code := term("y\n", "scan", "--revoke", "--grace", "1h", dir)
	if code != exitFailure || !strings.Contains(errs, "Rotate key leaked") {
		t.Fatalf("answer y: exit %d, %q", code, errs)
	}
	var fresh string
	for _, f := range strings.Fields(out) {
		if _, err := apikey.Parse(f); err == nil {
			fresh = f
		}
	}
	if fresh == "" || fresh == secret || strings.Count(out, fresh) != 1 {
		t.Fatalf("the new secret is not on stdout once: %q", out)
	}
	// Both secrets work during the grace.
	for _, s := range []string{secret, fresh} {
		cliIn(t, env, s+"\n", "key", "verify")
	}
}

func cliIn(t *testing.T, env map[string]string, stdin string, args ...string) string {
	t.Helper()
	out, errs, code := runAt(env, time.Now, stdin, args...)
	if code != exitOK {
		t.Fatalf("keymint %s: exit %d: %s", strings.Join(args, " "), code, errs)
	}
	return out
}

// TestScanUnverified: without a vault, secrets found are reported as
// unverified and count as live; nothing found is exit 0 without a vault.
func TestScanUnverified(t *testing.T) {
	env := cliEnv(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "clean.txt"), "nothing here km_short\n")
	if _, errs, code := runAt(env, time.Now, "", "scan", dir); code != exitOK {
		t.Fatalf("clean tree without a vault: exit %d: %s", code, errs)
	}
	writeFile(t, filepath.Join(dir, "leak.txt"), mustGenerate(t, "km")+"\n")
	out, errs, code := runAt(env, time.Now, "", "scan", dir)
	if code != exitFailure || !strings.Contains(out, "leak.txt:1:1: km_**** unverified") || !strings.Contains(errs, "could not be checked") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if _, errs, code := runAt(env, time.Now, "", "scan", "--revoke", "--yes", dir); code != exitFailure || !strings.Contains(errs, "cannot revoke") {
		t.Fatalf("--revoke without a vault: exit %d, %q", code, errs)
	}
	for _, args := range [][]string{{"scan"}, {"scan", filepath.Join(dir, "missing")}, {"scan", "-", dir}, {"scan", "--grace", "1h", dir}} {
		if _, _, code := runAt(env, time.Now, "", args...); code != exitUsage {
			t.Errorf("keymint %s: exit %d, want 2", strings.Join(args, " "), code)
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
