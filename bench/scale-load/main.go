// Command scale-load is the HTTP side of bench/scale: a load client for
// POST /token that records when every response arrived, and two pollers
// that time how soon the server answers. Each prints one JSON object on
// stdout. It talks to whatever URL it is given; bench/scale gives it
// 127.0.0.1 only.
//
//	scale-load token -url BASE -creds FILL_JSON [-c 32] [-d 20s]
//
// token runs -c goroutines, each on its own keep-alive connection, posting
// client_credentials requests (HTTP Basic, with the client of the JSON that
// bench/fill printed) to BASE/token for -d. It reports throughput, latency
// percentiles and, as max_gap_ms, the longest time in which no response at
// all completed: a stall of the whole server shows there even when the
// percentiles hide it.
//
//	scale-load ready -url URL [-fallback URL2] -since UNIX_TIME [-pid PID] [-timeout 120s]
//
// ready polls URL every 5 ms until it answers 200 and reports the time since
// UNIX_TIME (seconds with a fraction, as bash's $EPOCHREALTIME): with
// UNIX_TIME taken just before a server was started, its start-up time. If
// URL answers 404 it polls URL2 instead from then on (a server without a
// readiness endpoint, such as /readyz, but with a health check); the result
// names the URL that answered 200. It gives up if process PID exits.
//
//	scale-load verify -url BASE -key KEY_JSON -since UNIX_TIME [-every 10ms] [-timeout 60s]
//
// verify polls GET BASE/verify every -every with the API key of KEY_JSON
// (the output of `keymint key new -o json`; the secret is never in argv) as
// a Bearer token until it answers 200, and reports the time since
// UNIX_TIME: with UNIX_TIME taken when `keymint key new` returned, how soon
// a running server serves a new key. Each poll comes from another loopback
// source address (127.1.x.y), since the server throttles an address after 10
// checks of an unknown key and would otherwise answer 429 for up to a second
// after it knows the key.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var (
		res any
		err error
	)
	switch os.Args[1] {
	case "token":
		res, err = token(os.Args[2:])
	case "ready":
		res, err = ready(os.Args[2:])
	case "verify":
		res, err = verify(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "scale-load:", err)
		os.Exit(1)
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		fmt.Fprintln(os.Stderr, "scale-load:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, `usage: scale-load token  -url BASE -creds FILL_JSON [-c 32] [-d 20s]
       scale-load ready  -url URL [-fallback URL2] -since UNIX_TIME [-pid PID] [-timeout 120s]
       scale-load verify -url BASE -key KEY_JSON -since UNIX_TIME [-every 10ms] [-timeout 60s]`)
	os.Exit(2)
}

// ms is a duration in milliseconds, with microseconds.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// parseSince reads a Unix time in seconds with a fraction.
func parseSince(s string) (time.Time, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 {
		return time.Time{}, fmt.Errorf("-since %q: want Unix seconds such as $EPOCHREALTIME", s)
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)), nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

type tokenResult struct {
	Connections int     `json:"connections"`
	DurationS   float64 `json:"duration_s"`
	Requests    int     `json:"requests"`
	Non2xx      int     `json:"non_2xx"`
	Errors      int     `json:"errors"`
	RPS         float64 `json:"throughput_rps"`
	P50         float64 `json:"p50_ms"`
	P99         float64 `json:"p99_ms"`
	P999        float64 `json:"p999_ms"`
	Max         float64 `json:"max_ms"`
	MaxGap      float64 `json:"max_gap_ms"`
	// MaxGapAt is when the longest gap began, in seconds from the start.
	MaxGapAt float64 `json:"max_gap_at_s"`
}

// sample is one completed request: when it completed, from the start, and
// how long it took.
type sample struct{ done, latency time.Duration }

func token(args []string) (*tokenResult, error) {
	fs := flag.NewFlagSet("token", flag.ExitOnError)
	base := fs.String("url", "", "base URL of the server")
	credsFile := fs.String("creds", "", "JSON printed by bench/fill")
	conns := fs.Int("c", 32, "concurrent connections")
	dur := fs.Duration("d", 20*time.Second, "duration")
	_ = fs.Parse(args)
	if *base == "" || *credsFile == "" || *conns < 1 || *dur <= 0 || fs.NArg() > 0 {
		usage()
	}
	var creds struct {
		Client struct {
			ID     string `json:"client_id"`
			Secret string `json:"client_secret"`
		} `json:"client"`
	}
	if err := readJSON(*credsFile, &creds); err != nil {
		return nil, err
	}
	if creds.Client.ID == "" || creds.Client.Secret == "" {
		return nil, fmt.Errorf("%s: no client.client_id and client.client_secret", *credsFile)
	}
	tr := &http.Transport{
		MaxIdleConns:        *conns,
		MaxIdleConnsPerHost: *conns,
		MaxConnsPerHost:     *conns,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	url := strings.TrimRight(*base, "/") + "/token"
	body := "grant_type=client_credentials"

	start := time.Now()
	deadline := start.Add(*dur)
	type worker struct {
		samples        []sample
		non2xx, errors int
	}
	workers := make([]worker, *conns)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			me := &workers[w]
			me.samples = make([]sample, 0, 1<<16)
			for {
				t0 := time.Now()
				if !t0.Before(deadline) {
					return
				}
				req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
				if err != nil {
					me.errors++
					return
				}
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth(creds.Client.ID, creds.Client.Secret)
				resp, err := client.Do(req)
				if err != nil {
					me.errors++
					time.Sleep(10 * time.Millisecond) // no busy loop on a dead server
					continue
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				t1 := time.Now()
				if err != nil {
					me.errors++
					continue
				}
				if resp.StatusCode/100 != 2 {
					me.non2xx++
				}
				me.samples = append(me.samples, sample{done: t1.Sub(start), latency: t1.Sub(t0)})
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)

	res := &tokenResult{Connections: *conns, DurationS: elapsed.Seconds()}
	var all []sample
	for _, w := range workers {
		all = append(all, w.samples...)
		res.Non2xx += w.non2xx
		res.Errors += w.errors
	}
	res.Requests = len(all)
	if len(all) == 0 {
		return nil, errors.New("no request completed")
	}
	res.RPS = float64(len(all)) / elapsed.Seconds()
	lat := make([]time.Duration, len(all))
	for i, s := range all {
		lat[i] = s.latency
	}
	slices.Sort(lat)
	pct := func(p float64) float64 { return ms(lat[min(len(lat)-1, int(p/100*float64(len(lat))))]) }
	res.P50, res.P99, res.P999, res.Max = pct(50), pct(99), pct(99.9), ms(lat[len(lat)-1])
	slices.SortFunc(all, func(a, b sample) int { return int(a.done - b.done) })
	for i := 1; i < len(all); i++ {
		if gap := all[i].done - all[i-1].done; ms(gap) > res.MaxGap {
			res.MaxGap, res.MaxGapAt = ms(gap), all[i-1].done.Seconds()
		}
	}
	return res, nil
}

type readyResult struct {
	MS    float64 `json:"ms"`
	Polls int     `json:"polls"`
	URL   string  `json:"url"`
}

func ready(args []string) (*readyResult, error) {
	fs := flag.NewFlagSet("ready", flag.ExitOnError)
	url := fs.String("url", "", "URL that answers 200 once the server is ready")
	fallback := fs.String("fallback", "", "URL to poll instead if -url answers 404")
	sinceArg := fs.String("since", "", "Unix time to measure from")
	pid := fs.Int("pid", 0, "give up if this process exits")
	timeout := fs.Duration("timeout", 120*time.Second, "give up after this long")
	_ = fs.Parse(args)
	if *url == "" || *sinceArg == "" || fs.NArg() > 0 {
		usage()
	}
	since, err := parseSince(*sinceArg)
	if err != nil {
		return nil, err
	}
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	target := *url
	deadline := time.Now().Add(*timeout)
	for polls := 1; time.Now().Before(deadline); polls++ {
		resp, err := client.Get(target)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			switch {
			case resp.StatusCode == http.StatusOK:
				return &readyResult{MS: ms(time.Since(since)), Polls: polls, URL: target}, nil
			case resp.StatusCode == http.StatusNotFound && *fallback != "" && target != *fallback:
				target = *fallback
				continue
			}
		}
		if *pid > 0 && !alive(*pid) {
			return nil, fmt.Errorf("process %d exited before %s answered 200", *pid, target)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil, fmt.Errorf("%s did not answer 200 within %s", target, *timeout)
}

// alive reports whether process pid runs: it exists and is not a zombie
// (a server that died as a child of the script stays one until reaped).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true // no /proc: trust kill
	}
	// The state follows the parenthesised command name, which may hold spaces.
	i := strings.LastIndexByte(string(stat), ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}

type verifyResult struct {
	MS       float64        `json:"ms"`
	Polls    int            `json:"polls"`
	Statuses map[string]int `json:"statuses"`
}

func verify(args []string) (*verifyResult, error) {
	fs := flag.NewFlagSet("verify", flag.ExitOnError)
	base := fs.String("url", "", "base URL of the server")
	keyFile := fs.String("key", "", "JSON printed by keymint key new -o json")
	sinceArg := fs.String("since", "", "Unix time to measure from")
	every := fs.Duration("every", 10*time.Millisecond, "poll interval")
	timeout := fs.Duration("timeout", 60*time.Second, "give up after this long")
	_ = fs.Parse(args)
	if *base == "" || *keyFile == "" || *sinceArg == "" || *every <= 0 || fs.NArg() > 0 {
		usage()
	}
	since, err := parseSince(*sinceArg)
	if err != nil {
		return nil, err
	}
	var key struct {
		Secret string `json:"secret"`
	}
	if err := readJSON(*keyFile, &key); err != nil {
		return nil, err
	}
	if key.Secret == "" {
		return nil, fmt.Errorf("%s: no secret", *keyFile)
	}
	url := strings.TrimRight(*base, "/") + "/verify"
	res := &verifyResult{Statuses: map[string]int{}}
	deadline := time.Now().Add(*timeout)
	tick := time.NewTicker(*every)
	defer tick.Stop()
	for ; time.Now().Before(deadline); <-tick.C {
		res.Polls++
		// 127.1.0.1 to 127.1.250.250: another throttle bucket each poll.
		src := net.IPv4(127, 1, byte(res.Polls/250%250), byte(res.Polls%250+1))
		status, err := verifyOnce(url, key.Secret, src)
		if err != nil {
			res.Statuses["error"]++
			continue
		}
		res.Statuses[strconv.Itoa(status)]++
		if status == http.StatusOK {
			res.MS = ms(time.Since(since))
			return res, nil
		}
	}
	return nil, fmt.Errorf("%s did not accept the key within %s (%v)", url, *timeout, res.Statuses)
}

// verifyOnce sends one GET /verify from src on a new connection.
func verifyOnce(url, secret string, src net.IP) (int, error) {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: time.Second}
	tr := &http.Transport{DisableKeepAlives: true, DialContext: d.DialContext}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}
