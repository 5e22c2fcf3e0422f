package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// writeJSON prints one JSON value: what -o json promises scripts.
func (a *app) writeJSON(v any) error {
	enc := json.NewEncoder(a.io.Out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// jsonError is an error as -o json prints it on stderr, on one line: the
// same message the text form gives after "keymint: ", and the exit code.
type jsonError struct {
	Error string `json:"error"`
	Exit  int    `json:"exit"`
}

// writeJSONError prints msg, already one line and masked, and the exit
// code as one JSON object on one line of w.
func writeJSONError(w io.Writer, msg string, code int) {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if enc.Encode(jsonError{Error: msg, Exit: code}) != nil {
		fmt.Fprintf(w, "keymint: %s\n", msg)
	}
}

// jsonErrors says whether an error of this run goes out as JSON: when -o
// json is in force, or, if the settings could not be loaded, when the -o
// flag or KEYMINT_OUTPUT asks for it. An -o that never got parsed leaves
// the text form.
func (a *app) jsonErrors(root *cobra.Command) bool {
	if f := root.PersistentFlags().Lookup("output"); f != nil && f.Changed {
		return strings.EqualFold(f.Value.String(), "json")
	}
	if a.cfg.Output != "" {
		return strings.EqualFold(a.cfg.Output, "json")
	}
	return strings.EqualFold(strings.TrimSpace(a.getenv("KEYMINT_OUTPUT")), "json")
}

// table prints aligned columns for people.
type table struct {
	w *tabwriter.Writer
}

func newTable(out io.Writer, headers ...string) *table {
	t := &table{w: tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)}
	t.row(headers...)
	return t
}

func (t *table) row(cells ...string) {
	for i, c := range cells {
		if c == "" {
			cells[i] = "-"
		}
	}
	fmt.Fprintln(t.w, strings.Join(cells, "\t"))
}

func (t *table) flush() error { return t.w.Flush() }

// relTime describes t relative to now for people: "3 minutes ago", "in 89 days".
func relTime(t *time.Time, now time.Time, never string) string {
	if t == nil {
		return never
	}
	d := t.Sub(now)
	if d > -time.Second && d < time.Second {
		return "now"
	}
	past := d < 0
	if past {
		d = -d
	}
	// Round to the nearest unit: 90 days is "3 months", 1h59m is "2 hours".
	round := func(unit time.Duration) int { return int((d + unit/2) / unit) }
	const day, month, year = 24 * time.Hour, 30 * 24 * time.Hour, 365 * 24 * time.Hour
	var s string
	switch {
	case d < time.Minute:
		s = plural(round(time.Second), "second")
	case d < time.Hour:
		s = plural(round(time.Minute), "minute")
	case d < 48*time.Hour:
		s = plural(round(time.Hour), "hour")
	case d < 60*day:
		s = plural(round(day), "day")
	case d < 2*year:
		s = plural(round(month), "month")
	default:
		s = plural(round(year), "year")
	}
	if past {
		return s + " ago"
	}
	return "in " + s
}

func plural[N int | int64](n N, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

// oldSecretFor says how long a rotated secret keeps working.
func oldSecretFor(grace time.Duration) string {
	if grace <= 0 {
		return "the old secret stops working now"
	}
	return "the old secret works for " + shortDuration(grace) + " more"
}

// utcPtr returns a copy of t in UTC, or nil, for JSON output.
func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC().Truncate(time.Second)
	return &u
}

// shortDuration drops the zero units Go prints: "24h", not "24h0m0s".
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
