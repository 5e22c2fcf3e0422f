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

// usage limit and usage top-up: changing what a credential may use.

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
		RunE: func(_ *cobra.Command, args []string) error {
			return a.runUsageLimit(args[0], args[1:], o)
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

// runUsageLimit applies the LIMITs in limits (or "none") and o's --remove
// periods to the credential ref names.
func (a *app) runUsageLimit(ref string, limits []string, o usageLimitOptions) error {
	change, err := parseLimitChange(limits, o.remove)
	if err != nil {
		return err
	}
	var s subject
	var res limitResult
	var rows []usageRow
	var now time.Time
	err = a.update(func(tx *vault.Tx) (err error) {
		if s, err = findSubject(tx, ref); err != nil {
			return err
		}
		if res, err = applyLimitChange(tx, s, change); err != nil {
			return err
		}
		now = tx.Now()
		rows, err = currentRows(tx, s, now)
		return err
	})
	if err != nil {
		return err
	}
	if a.json() {
		return a.writeJSON(limitJSON(s, res, rows))
	}
	c := s.cred()
	fmt.Fprintf(a.io.Out, "%s %s (%s): %s (%s)\n", s.kind(), c.Name, c.ID, limitsPhrase(res.limits, "no limits now", "limits now "), changesPhrase(res.changes))
	if len(res.limits) == 0 {
		return nil
	}
	return writeUsageTable(a.io.Out, rows, now, false)
}

// limitResult is what a limit change left: the limits now in force, and
// what changed.
type limitResult struct {
	limits  []quota.Limit
	changes []quota.LimitChange
}

// applyLimitChange changes s's limits in tx, and saves s if anything
// changed. Removing a limit s does not have is an error, so that a
// mistyped period is not taken for done.
func applyLimitChange(tx *vault.Tx, s subject, change limitChange) (limitResult, error) {
	current, err := quota.LimitsOf(s.cred())
	if err != nil {
		return limitResult{}, err
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
			return limitResult{}, fmt.Errorf("%s %s has no %s limit to remove (%s); nothing was changed", s.kind(), s.cred().Name, p, limitsPhrase(current, "it has no limits", "its limits are "))
		}
	}
	var res limitResult
	if res.limits, res.changes, err = quota.MergeLimits(current, change.set, remove); err != nil {
		return limitResult{}, usageError{err}
	}
	if len(res.changes) > 0 {
		s.cred().Limits = quota.StoredLimits(res.limits)
		if err := s.save(tx); err != nil {
			return limitResult{}, err
		}
	}
	return res, nil
}

// limitJSON is usage limit's -o json output; its lists are [] rather than
// null when empty.
func limitJSON(s subject, res limitResult, rows []usageRow) usageLimitJSON {
	c := s.cred()
	out := usageLimitJSON{Credential: c.ID, Name: c.Name, Kind: string(s.kind()), Limits: []string{}, Changes: []limitChangeJSON{}, Usage: rows}
	for _, l := range res.limits {
		out.Limits = append(out.Limits, l.String())
	}
	for _, ch := range res.changes {
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
	return out
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
		RunE: func(_ *cobra.Command, args []string) error {
			return a.runUsageTopUp(args[0], args[1])
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

// runUsageTopUp adds count, a number of uses still to be parsed, to the
// current period of the credential ref names.
func (a *app) runUsageTopUp(ref, count string) error {
	n, err := parseTopUp(count)
	if err != nil {
		return err
	}
	var s subject
	var st quota.Status
	var now time.Time
	err = a.update(func(tx *vault.Tx) (err error) {
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
