package main

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
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
		RunE: func(cmd *cobra.Command, args []string) error {
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
	var rows []usageRow
	var histories []subjectHistory
	var now time.Time
	err := a.view(func(tx *vault.Tx) error {
		now = tx.Now()
		if !hasPeriod {
			at = now
		}
		var subjects []subject
		if ref != "" {
			s, err := findSubject(tx, ref)
			if err != nil {
				return err
			}
			subjects = []subject{s}
		} else {
			var err error
			if subjects, err = allSubjects(tx); err != nil {
				return err
			}
		}
		for _, s := range subjects {
			var rs []usageRow
			var err error
			if hasPeriod {
				rs, err = periodRows(tx, s, period, at)
			} else {
				rs, err = currentRows(tx, s, now)
			}
			if err != nil {
				return err
			}
			rows = append(rows, rs...)
			if o.history {
				h, err := monthHistory(tx, s, at, now)
				if err != nil {
					return err
				}
				histories = append(histories, h)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if o.history {
		if a.json() {
			return a.writeJSON(historyJSON(histories))
		}
		if err := writeUsageTable(a.io.Out, rows, now, hasPeriod); err != nil {
			return err
		}
		for _, h := range histories {
			fmt.Fprintln(a.io.Out)
			writeHistory(a.io.Out, h)
		}
		return nil
	}
	if a.json() {
		if rows == nil {
			rows = []usageRow{}
		}
		return a.writeJSON(rows)
	}
	return writeUsageTable(a.io.Out, rows, now, hasPeriod)
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

type usageLimitOptions struct {
	remove []string
}

func newUsageLimitCmd(a *app) *cobra.Command {
	var o usageLimitOptions
	const missing = "ID|NAME and a limit such as 8000/month, --remove PERIOD, or none"
	cmd := &cobra.Command{
		Use:   "limit ID|NAME [LIMIT...|none] [--remove PERIOD]...",
		Short: "Set, remove or lift the limits of a key or client",
		Long: `Set limits of a key or client: each LIMIT a count per period, as in
8000/month or 10/second (periods: second, minute, hour, day, month; one
limit per period). A LIMIT adds the limit of its period, or replaces the
one there; the limits of other periods stay as they are.

--remove PERIOD removes the limit of that period and keeps the others
(repeatable: --remove second --remove day). "none" lifts every limit.

The output says the limits now in force and what changed, as in
  client erp (cl_...): limits now 10/second, 9000/month (month changed from 8000)
then where each limit stands, as usage show prints it. -o json prints an
object with credential, name, kind, limits (those now in force, as
"9000/month"), changes (period, from, to: a limit, or null for one added or
removed) and usage (the rows of usage show -o json).

Uses already counted in the current period count against a new limit: a
limit of 8000/month set mid-month counts the uses made since the first.

EXIT CODES
  0  set, or already so;  1  no such credential, no limit of a --remove
  period to remove, or the vault could not be written;  2  a malformed limit
  or period, such as 0/month, 10/fortnight or -5/day, or one period both set
  and removed.`,
		Example: `  keymint usage limit erp 8000/month
  keymint usage limit partner-x 10/second 8000/month
  keymint usage limit partner-x --remove second
  keymint usage limit erp none`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 || (len(args) == 1 && len(o.remove) == 0) {
				return usagef("missing %s", missing)
			}
			return nil
		},
		ValidArgsFunction: a.completeSubjects(),
		RunE: func(cmd *cobra.Command, args []string) error {
			change, err := parseLimitChange(args[1:], o.remove)
			if err != nil {
				return err
			}
			return a.runUsageLimit(args[0], change)
		},
	}
	cmd.Flags().StringArrayVar(&o.remove, "remove", nil, "remove the limit of this period, keeping the others: second, minute, hour, day or month (repeatable)")
	cmd.SetFlagErrorFunc(negativeArgError(func(arg string) error {
		_, err := parseLimitArgs([]string{arg})
		return err
	}))
	return cmd
}

// limitChange is what `usage limit` is asked to do: set limits, remove
// those of some periods, or lift them all.
type limitChange struct {
	set    []quota.Limit
	remove []quota.Period
	lift   bool
}

// parseLimitChange reads the LIMITs and --remove periods of `usage limit`.
func parseLimitChange(args, remove []string) (limitChange, error) {
	var c limitChange
	if slices.ContainsFunc(args, quota.IsNone) {
		if len(args) > 1 {
			return c, usagef(`"none" lifts every limit; give it alone, or give limits without it`)
		}
		if len(remove) > 0 {
			return c, usagef(`"none" lifts every limit; give it without --remove`)
		}
		c.lift = true
		return c, nil
	}
	var err error
	if c.set, err = parseLimitArgs(args); err != nil {
		return c, err
	}
	for _, r := range remove {
		p, err := quota.ParsePeriod(r)
		if err != nil {
			return c, usagef("invalid --remove: %w", err)
		}
		if i := slices.IndexFunc(c.set, func(l quota.Limit) bool { return l.Period == p }); i >= 0 {
			return c, usagef("%s sets the %s limit that --remove %s removes; give one or the other", c.set[i], p, r)
		}
		if !slices.Contains(c.remove, p) {
			c.remove = append(c.remove, p)
		}
	}
	return c, nil
}

// parseLimitArgs reads the limits of `usage limit`: limits, or "none"
// alone, which gives no limits.
func parseLimitArgs(args []string) ([]quota.Limit, error) {
	if slices.ContainsFunc(args, quota.IsNone) {
		if len(args) > 1 {
			return nil, usagef(`"none" lifts every limit; give it alone, or give limits without it`)
		}
		return nil, nil
	}
	limits, err := quota.ParseLimits(args)
	if err != nil {
		return nil, usageError{err}
	}
	return limits, nil
}

// parseLimitFlags reads a repeated --limit flag of key new and client new.
func parseLimitFlags(values []string) ([]vault.Limit, error) {
	for _, v := range values {
		if quota.IsNone(v) {
			return nil, usagef(`--limit none: a new credential has no limit unless given one; leave --limit out`)
		}
	}
	limits, err := quota.ParseLimits(values)
	if err != nil {
		return nil, usagef("--%w", err)
	}
	return quota.StoredLimits(limits), nil
}

// usageLimitJSON is what `usage limit -o json` prints: the limits now in
// force, what changed, and where each limit stands.
type usageLimitJSON struct {
	Credential string            `json:"credential"`
	Name       string            `json:"name"`
	Kind       string            `json:"kind"`
	Limits     []string          `json:"limits"`
	Changes    []limitChangeJSON `json:"changes"`
	Usage      []usageRow        `json:"usage"`
}

// limitChangeJSON is the change of one period's limit; From is null for a
// limit added, To for one removed.
type limitChangeJSON struct {
	Period string  `json:"period"`
	From   *string `json:"from"`
	To     *string `json:"to"`
}

func (a *app) runUsageLimit(ref string, change limitChange) error {
	var s subject
	var rows []usageRow
	var limits []quota.Limit
	var changes []quota.LimitChange
	var now time.Time
	err := a.update(func(tx *vault.Tx) (err error) {
		if s, err = findSubject(tx, ref); err != nil {
			return err
		}
		current, err := quota.LimitsOf(s.cred())
		if err != nil {
			return err
		}
		remove := change.remove
		if change.lift {
			remove = nil
			for _, l := range current {
				remove = append(remove, l.Period)
			}
		}
		for _, p := range remove {
			if !slices.ContainsFunc(current, func(l quota.Limit) bool { return l.Period == p }) {
				return fmt.Errorf("%s %s has no %s limit to remove (%s); nothing was changed", s.kind(), s.cred().Name, p, limitsPhrase(current, "it has no limits", "its limits are "))
			}
		}
		if limits, changes, err = quota.MergeLimits(current, change.set, remove); err != nil {
			return usageError{err}
		}
		if len(changes) > 0 {
			s.cred().Limits = quota.StoredLimits(limits)
			if err := s.save(tx); err != nil {
				return err
			}
		}
		now = tx.Now()
		rows, err = currentRows(tx, s, now)
		return err
	})
	if err != nil {
		return err
	}
	c := s.cred()
	if a.json() {
		out := usageLimitJSON{Credential: c.ID, Name: c.Name, Kind: string(s.kind()), Limits: []string{}, Changes: []limitChangeJSON{}, Usage: rows}
		for _, l := range limits {
			out.Limits = append(out.Limits, l.String())
		}
		for _, ch := range changes {
			j := limitChangeJSON{Period: ch.Period.String()}
			if ch.From != nil {
				from := ch.From.String()
				j.From = &from
			}
			if ch.To != nil {
				to := ch.To.String()
				j.To = &to
			}
			out.Changes = append(out.Changes, j)
		}
		if out.Usage == nil {
			out.Usage = []usageRow{}
		}
		return a.writeJSON(out)
	}
	fmt.Fprintf(a.io.Out, "%s %s (%s): %s (%s)\n", s.kind(), c.Name, c.ID, limitsPhrase(limits, "no limits now", "limits now "), changesPhrase(changes))
	if len(limits) == 0 {
		return nil
	}
	return writeUsageTable(a.io.Out, rows, now, false)
}

// limitsPhrase lists limits as "10/second, 9000/month" after prefix, or
// says none.
func limitsPhrase(limits []quota.Limit, none, prefix string) string {
	if len(limits) == 0 {
		return none
	}
	ls := make([]string, 0, len(limits))
	for _, l := range limits {
		ls = append(ls, l.String())
	}
	return prefix + strings.Join(ls, ", ")
}

// changesPhrase says what changed, as in "month changed from 8000, added
// 10/second", or "unchanged".
func changesPhrase(changes []quota.LimitChange) string {
	if len(changes) == 0 {
		return "unchanged"
	}
	var out []string
	for _, c := range changes {
		switch {
		case c.From == nil:
			out = append(out, "added "+c.To.String())
		case c.To == nil:
			out = append(out, "removed "+c.From.String())
		default:
			out = append(out, fmt.Sprintf("%s changed from %d", c.Period, c.From.Count))
		}
	}
	return strings.Join(out, ", ")
}

func newUsageTopUpCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "top-up ID|NAME N",
		Short: "Add N extra uses to the current period of a credential's limit",
		Long: `Add N extra uses to the current period of the longest limit of a key or
client, as an add-on pack does: with 8000/month, "top-up erp 8000" allows
16000 uses this month, and 8000 again from the next. A credential without a
limit has nothing to top up.

EXIT CODES
  0  added;  1  no such credential, it has no limit, or the vault could not
  be written;  2  N is not a positive whole number.`,
		Example:           `  keymint usage top-up erp 8000`,
		Args:              exactArgs(2, "ID|NAME and a number of uses"),
		ValidArgsFunction: a.completeSubjects(),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := parseTopUp(args[1])
			if err != nil {
				return err
			}
			return a.runUsageTopUp(args[0], n)
		},
	}
	cmd.SetFlagErrorFunc(negativeArgError(func(arg string) error {
		_, err := parseTopUp(arg)
		return err
	}))
	return cmd
}

// parseTopUp reads N: digits only, positive, within an int64.
func parseTopUp(s string) (int64, error) {
	bad := usagef("invalid number of uses %q: give a positive whole number, as in 8000", s)
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, bad
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, bad
	}
	return n, nil
}

func (a *app) runUsageTopUp(ref string, n int64) error {
	var s subject
	var st quota.Status
	var now time.Time
	err := a.update(func(tx *vault.Tx) (err error) {
		if s, err = findSubject(tx, ref); err != nil {
			return err
		}
		now = tx.Now()
		st, err = quota.TopUp(tx, s.cred(), n, now)
		return err
	})
	switch {
	case errors.Is(err, quota.ErrNoLimit):
		return fmt.Errorf("%s %s has no limit to top up; set one first, as in `keymint usage limit %s 8000/month`", s.kind(), s.cred().Name, s.cred().Name)
	case errors.Is(err, vault.ErrUsageOverflow):
		return fmt.Errorf("a top-up of %d would take %s past the largest count keymint keeps; lift the limit instead (`keymint usage limit %s none`)", n, s.cred().Name, s.cred().Name)
	case err != nil:
		return err
	}
	row := rowFromStatus(s, st, now)
	if a.json() {
		return a.writeJSON(row)
	}
	fmt.Fprintf(a.io.Out, "added %s to %s for %s: %d in all, %d remaining, resets %s\n",
		plural(n, "use"), s.cred().Name, row.PeriodKey, st.Limit, st.Remaining, relTime(&st.ResetsAt, now, ""))
	return nil
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
