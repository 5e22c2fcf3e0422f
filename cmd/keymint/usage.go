package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keymint/keymint/quota"
	"github.com/keymint/keymint/vault"
)

func newUsageCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "usage",
		Short: "Show and manage the usage limits of keys and clients",
		Long: `A key or client may carry limits: N uses per second, minute, hour, day or
month, calendar periods in UTC. A use is a token issued or a key verified.
Every use is counted, with or without a limit, per day and per month.`,
	}
	cmd.AddCommand(newUsageShowCmd(a), newUsageLimitCmd(a), newUsageTopUpCmd(a))
	return cmd
}

// subject is a key or a client, the two things that carry limits.
type subject struct {
	key    *vault.Key
	client *vault.Client
}

func (s subject) cred() *vault.Credential {
	if s.client != nil {
		return &s.client.Credential
	}
	return &s.key.Credential
}

func (s subject) kind() vault.Kind {
	if s.client != nil {
		return vault.KindClient
	}
	return vault.KindKey
}

func (s subject) save(tx *vault.Tx) error {
	if s.client != nil {
		return tx.SaveClient(s.client)
	}
	return tx.SaveKey(s.key)
}

// findSubject resolves ID|NAME to a key or a client. Keys and clients have
// names of their own, so a name both use must be given as an id instead.
func findSubject(tx *vault.Tx, ref string) (subject, error) {
	k, kerr := tx.Key(ref)
	if kerr != nil && !errors.Is(kerr, vault.ErrNotFound) {
		return subject{}, kerr
	}
	c, cerr := tx.Client(ref)
	if cerr != nil && !errors.Is(cerr, vault.ErrNotFound) {
		return subject{}, cerr
	}
	switch {
	case kerr == nil && cerr == nil:
		return subject{}, usagef("%q names both a key (%s) and a client (%s): give the id of the one you mean", ref, k.ID, c.ID)
	case kerr == nil:
		return subject{key: k}, nil
	case cerr == nil:
		return subject{client: c}, nil
	}
	return subject{}, fmt.Errorf("no key or client %q: %w (see `keymint key ls` and `keymint client ls`)", ref, vault.ErrNotFound)
}

// allSubjects returns every key and client, ordered by name, keys first
// among equal names.
func allSubjects(tx *vault.Tx) ([]subject, error) {
	keys, err := tx.Keys()
	if err != nil {
		return nil, err
	}
	clients, err := tx.Clients()
	if err != nil {
		return nil, err
	}
	out := make([]subject, 0, len(keys)+len(clients))
	for _, k := range keys {
		out = append(out, subject{key: k})
	}
	for _, c := range clients {
		out = append(out, subject{client: c})
	}
	slices.SortStableFunc(out, func(a, b subject) int { return strings.Compare(a.cred().Name, b.cred().Name) })
	return out, nil
}

// usageRow is one limit of one credential in one period: a line of the
// table and an object of -o json. A credential without a limit has one row,
// for the month, with a null limit.
type usageRow struct {
	Credential string    `json:"credential"`
	Name       string    `json:"name"`
	Kind       string    `json:"kind"`
	Period     string    `json:"period"`
	PeriodKey  string    `json:"period_key"`
	Used       int64     `json:"used"`
	Limit      *int64    `json:"limit"`
	Extra      int64     `json:"extra"`
	Remaining  *int64    `json:"remaining"`
	ResetsAt   time.Time `json:"resets_at"`
}

func newRow(s subject, p quota.Period, at time.Time) usageRow {
	c := s.cred()
	return usageRow{
		Credential: c.ID,
		Name:       c.Name,
		Kind:       string(s.kind()),
		Period:     p.String(),
		PeriodKey:  p.Key(at),
		ResetsAt:   p.End(at),
	}
}

func rowFromStatus(s subject, st quota.Status, at time.Time) usageRow {
	r := newRow(s, st.Period, at)
	r.Used, r.Extra = st.Used, st.Extra
	limit, remaining := st.Limit, st.Remaining
	r.Limit, r.Remaining = &limit, &remaining
	return r
}

// currentRows is where s stands now: a row per limit, or the month's use.
func currentRows(tx *vault.Tx, s subject, now time.Time) ([]usageRow, error) {
	statuses, err := quota.Current(tx, s.cred(), now)
	if err != nil {
		return nil, err
	}
	if len(statuses) == 0 {
		return periodRows(tx, s, quota.Month, now)
	}
	rows := make([]usageRow, 0, len(statuses))
	for _, st := range statuses {
		rows = append(rows, rowFromStatus(s, st, now))
	}
	return rows, nil
}

// periodRows is s in the period of length p that contains at: its limit
// of that period (as the limit stands now), or its bare count for a day or
// a month, which are counted for every credential. A credential with no
// limit of a period shorter than a day has no row for it.
func periodRows(tx *vault.Tx, s subject, p quota.Period, at time.Time) ([]usageRow, error) {
	limits, err := quota.LimitsOf(s.cred())
	if err != nil {
		return nil, err
	}
	count, err := tx.Usage(s.cred().ID, p.Key(at))
	if err != nil {
		return nil, err
	}
	for _, l := range limits {
		if l.Period != p {
			continue
		}
		usage := quota.Usage{Used: map[quota.Period]int64{p: count.Used}, Extra: map[quota.Period]int64{p: count.Extra}}
		statuses, err := quota.Statuses([]quota.Limit{l}, usage, at)
		if err != nil {
			return nil, err
		}
		return []usageRow{rowFromStatus(s, statuses[0], at)}, nil
	}
	if p < quota.Day {
		return nil, nil
	}
	r := newRow(s, p, at)
	r.Used = count.Used
	return []usageRow{r}, nil
}

type usageShowOptions struct {
	period  string
	history bool
}

func newUsageShowCmd(a *app) *cobra.Command {
	var o usageShowOptions
	cmd := &cobra.Command{
		Use:   "show [ID|NAME]",
		Short: "Show used, limit, remaining and reset time per credential",
		Long: `Show how much of its limits each key and client has used in the current
period, or one credential's with ID|NAME: one line per limit, with a bar
for the share used. A credential without a limit shows its use this month.

--period names a past (or current) period as 2026-11 for a month or
2026-11-22 for a day (or 2026-11-22T21, an hour, and so on), and shows
every credential's use in it, against the limit as it stands now.

--history adds a bar per day of the month (the month of --period, or this
one) with the number of uses that day.

-o json prints an array of objects with credential, name, kind, period
(month, day, ...), period_key (2026-11), used, limit, extra, remaining and
resets_at; limit and remaining are null for a credential without a limit.
With --history it prints, per credential, the days of the month instead.

EXIT CODES
  0  shown;  1  the vault could not be read, or no such credential;
  2  bad usage, such as a malformed --period.`,
		Example: `  keymint usage show
  keymint usage show erp --history
  keymint usage show --period 2026-11 -o json`,
		Args:              maxArgs(1, "one key or client"),
		ValidArgsFunction: a.completeSubjects(),
		RunE: func(_ *cobra.Command, args []string) error {
			ref := ""
			if len(args) == 1 {
				ref = args[0]
			}
			return a.runUsageShow(ref, o)
		},
	}
	cmd.Flags().StringVar(&o.period, "period", "", "a period to show instead of the current one: 2026-11 (a month), 2026-11-22 (a day), ...")
	cmd.Flags().BoolVar(&o.history, "history", false, "add the uses of each day of the month, as bars")
	return cmd
}

// subjectHistory is one credential's per-day use over a month.
type subjectHistory struct {
	subject subject
	month   time.Time
	days    []quota.DayUse
}

// usageReport is what usage show read, in one transaction at the vault's
// time now.
type usageReport struct {
	rows      []usageRow
	histories []subjectHistory
	now       time.Time
}

func (a *app) runUsageShow(ref string, o usageShowOptions) error {
	var (
		period    quota.Period
		at        time.Time
		hasPeriod = o.period != ""
	)
	if hasPeriod {
		var err error
		if period, at, err = quota.ParsePeriodKey(o.period); err != nil {
			return usageError{fmt.Errorf("invalid --%w", err)}
		}
	}
	var rep usageReport
	err := a.view(func(tx *vault.Tx) error {
		rep.now = tx.Now()
		if !hasPeriod {
			at = rep.now
		}
		subjects, err := usageSubjects(tx, ref)
		if err != nil {
			return err
		}
		for _, s := range subjects {
			var rs []usageRow
			if hasPeriod {
				rs, err = periodRows(tx, s, period, at)
			} else {
				rs, err = currentRows(tx, s, rep.now)
			}
			if err != nil {
				return err
			}
			rep.rows = append(rep.rows, rs...)
			if o.history {
				h, err := monthHistory(tx, s, at, rep.now)
				if err != nil {
					return err
				}
				rep.histories = append(rep.histories, h)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return a.printUsage(rep, hasPeriod, o.history)
}

// usageSubjects is the credential ref names, or every one when ref is "".
func usageSubjects(tx *vault.Tx, ref string) ([]subject, error) {
	if ref == "" {
		return allSubjects(tx)
	}
	s, err := findSubject(tx, ref)
	if err != nil {
		return nil, err
	}
	return []subject{s}, nil
}

// printUsage prints what usage show read: the rows, and with history the
// per-day charts (or, with -o json, the history alone).
func (a *app) printUsage(rep usageReport, byKey, history bool) error {
	if history {
		if a.json() {
			return a.writeJSON(historyJSON(rep.histories))
		}
		if err := writeUsageTable(a.io.Out, rep.rows, rep.now, byKey); err != nil {
			return err
		}
		for _, h := range rep.histories {
			fmt.Fprintln(a.io.Out)
			writeHistory(a.io.Out, h)
		}
		return nil
	}
	if a.json() {
		if rep.rows == nil {
			rep.rows = []usageRow{}
		}
		return a.writeJSON(rep.rows)
	}
	return writeUsageTable(a.io.Out, rep.rows, rep.now, byKey)
}

// monthHistory reads s's per-day use in the month containing at, up to
// today for the current month.
func monthHistory(tx *vault.Tx, s subject, at, now time.Time) (subjectHistory, error) {
	first := quota.Month.Start(at)
	last := quota.Month.End(at).AddDate(0, 0, -1)
	if today := quota.Day.Start(now); today.Before(last) {
		last = today
	}
	days, err := quota.History(tx, s.cred().ID, first, last)
	return subjectHistory{subject: s, month: first, days: days}, err
}

type dayJSON struct {
	Day  string `json:"day"`
	Used int64  `json:"used"`
}

type historyOut struct {
	Credential string    `json:"credential"`
	Name       string    `json:"name"`
	Kind       string    `json:"kind"`
	Month      string    `json:"month"`
	Used       int64     `json:"used"`
	Days       []dayJSON `json:"days"`
}

// negativeArgError replaces the error pflag gives for an argument that
// starts with a dash and a digit, such as -5/day, which it takes for a
// cluster of short flags ("unknown shorthand flag: '5' in -5/day"), with
// the error parse gives for that argument. Other flag errors pass as they
// are, as usage errors.
func negativeArgError(parse func(arg string) error) func(*cobra.Command, error) error {
	return func(_ *cobra.Command, err error) error {
		msg := err.Error()
		if i := strings.LastIndex(msg, " in -"); i >= 0 {
			arg := msg[i+len(" in "):]
			if len(arg) > 1 && arg[1] >= '0' && arg[1] <= '9' {
				if perr := parse(arg); perr != nil {
					return perr
				}
			}
		}
		return usageError{err}
	}
}

// completeSubjects completes the first argument with the names of keys
// and clients.
func (a *app) completeSubjects() cobra.CompletionFunc {
	both := a.completeNames(vault.KindKey, vault.KindClient)
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return both(cmd, args, toComplete)
	}
}
