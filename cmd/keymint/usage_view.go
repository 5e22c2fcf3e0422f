package main

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/keymint/keymint/quota"
)

// Drawing usage for people: the table with its share bars, and the
// per-day history chart.

func historyJSON(hs []subjectHistory) []historyOut {
	out := make([]historyOut, 0, len(hs))
	for _, h := range hs {
		c := h.subject.cred()
		o := historyOut{Credential: c.ID, Name: c.Name, Kind: string(h.subject.kind()), Month: quota.Month.Key(h.month), Days: []dayJSON{}}
		for _, d := range h.days {
			o.Days = append(o.Days, dayJSON{Day: quota.Day.Key(d.Day), Used: d.Used})
			o.Used += d.Used
		}
		out = append(out, o)
	}
	return out
}

// writeUsageTable prints rows for people. The PERIOD column names the
// period ("month") for the current one, or its key ("2026-11") for one
// asked for with --period.
func writeUsageTable(w io.Writer, rows []usageRow, now time.Time, byKey bool) error {
	t := newTable(w, "NAME", "KIND", "PERIOD", "USED", "LIMIT", "REMAINING", "RESETS", "SHARE")
	for _, r := range rows {
		period := r.Period
		if byKey {
			period = r.PeriodKey
		}
		limit, remaining, share := "none", "", ""
		if r.Limit != nil {
			limit = strconv.FormatInt(*r.Limit, 10)
			if r.Extra > 0 {
				limit = fmt.Sprintf("%d+%d", *r.Limit-r.Extra, r.Extra)
			}
			remaining = strconv.FormatInt(*r.Remaining, 10)
			share = shareBar(r.Used, *r.Limit, 10)
		}
		resets := r.ResetsAt
		t.row(r.Name, r.Kind, period, strconv.FormatInt(r.Used, 10), limit, remaining, relTime(&resets, now, ""), share)
	}
	return t.flush()
}

// shareBar draws the share of limit used as width cells and a percentage,
// as in "█████░░░░░ 52%". A share over 100% (a limit lowered mid-period)
// fills the bar and says so.
func shareBar(used, limit int64, width int) string {
	if limit <= 0 {
		return ""
	}
	share := float64(used) / float64(limit)
	filled := int(math.Round(min(share, 1) * float64(width)))
	if used > 0 && filled == 0 {
		filled = 1 // any use at all shows
	}
	if used < limit && filled == width {
		filled = width - 1 // and a use left shows too
	}
	return strings.Repeat("█", filled) + strings.Repeat("░", width-filled) + fmt.Sprintf(" %d%%", int(math.Floor(share*100)))
}

// histWidth is the width, in cells, of the longest day's bar.
const histWidth = 40

// eighths are the partial blocks that end a bar, from 1/8 to 7/8 of a cell.
var eighths = []string{"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"}

// writeHistory draws one credential's uses per day as horizontal bars,
// scaled to the busiest day, each followed by its count so that the chart
// reads the same in a pipe as on a terminal.
func writeHistory(w io.Writer, h subjectHistory) {
	c := h.subject.cred()
	var total, most int64
	for _, d := range h.days {
		total += d.Used
		most = max(most, d.Used)
	}
	fmt.Fprintf(w, "%s (%s), %s: %s, at most %d a day\n", c.Name, h.subject.kind(), quota.Month.Key(h.month), plural(total, "use"), most)
	for _, d := range h.days {
		bar := ""
		if most > 0 && d.Used > 0 {
			n := max(int(d.Used*histWidth*8/most), 1)
			bar = strings.Repeat("█", n/8) + eighths[n%8]
		}
		fmt.Fprintf(w, "%s %s  %-*s %d\n", quota.Day.Key(d.Day), d.Day.Format("Mon"), histWidth, bar, d.Used)
	}
}
