package quota

import (
	"fmt"
	"time"

	"github.com/keymint/keymint/vault"
)

// historyDays is how long the per-day counts behind "usage show --history"
// are kept: a little over a year, so a month can be set beside the same
// month a year before.
const historyDays = 400

// Decision is the outcome of asking for one use of a credential.
type Decision struct {
	// Allowed reports whether the use was granted (and counted).
	Allowed bool

	// Status is what to tell the client about: when the use was allowed,
	// the tightest limit after counting it ([Tightest]); when it was
	// denied, the exhausted limit that frees up last ([Allow]), whose
	// ResetsAt is when to retry. It is the zero Status when Limited is
	// false.
	Status Status

	// Limited reports whether the credential has any limit, that is
	// whether Status means anything and RateLimit fields should be sent.
	Limited bool
}

// Consume asks for one use of credential c at now, inside the caller's
// write transaction, and counts it if it fits.
//
// It reads the counts of the current period of each of c's limits and
// allows the use only if every limit has a use remaining (see [Allow]).
// An allowed use is added to every one of those counts and to the day's
// and month's counts that "keymint usage show" reports, so it is exactly
// as durable as the transaction: counted if and only if the transaction
// commits. Run Consume in the same transaction as the work the use pays
// for (minting the token, touching the key), and return an error from the
// transaction when that work fails so the count rolls back with it.
//
// A denied use changes nothing. A credential with no limits is always
// allowed, and still counted, so its use can be shown.
//
// Because a vault transaction is serializable (see vault.Store: bbolt
// lets one writer in at a time across processes, an optimistic store
// refuses the later of two conflicting commits and the vault runs it
// again), two callers can never both take the last use: the second sees
// the first's count. Errors come from the vault or from limits that cannot be
// enforced (see [LimitsOf]).
func Consume(tx *vault.Tx, c *vault.Credential, now time.Time) (Decision, error) {
	t, err := readTally(tx, c, now)
	if err != nil {
		return Decision{}, err
	}
	if ok, blocking := Allow(t.statuses); !ok {
		return Decision{Status: blocking, Limited: true}, nil
	}
	if err := t.count(tx, 1, now); err != nil {
		return Decision{}, err
	}
	return t.decision(), nil
}

// Current returns the status of each of c's limits at now, shortest
// period first, without counting anything. It is what "usage show" and a
// read-only check report.
func Current(tx *vault.Tx, c *vault.Credential, now time.Time) ([]Status, error) {
	t, err := readTally(tx, c, now)
	if err != nil {
		return nil, err
	}
	return t.statuses, nil
}

// TopUp adds n extra uses (n > 0) to the current period of c's longest
// limit, as an add-on pack does: with 8000/month, "top up 8000" allows 16000
// this month and 8000 again the next. It records the top-up in the audit
// log and returns the limit's status after it. A credential without a
// limit has nothing to top up: the error wraps [ErrNoLimit].
func TopUp(tx *vault.Tx, c *vault.Credential, n int64, now time.Time) (Status, error) {
	if n <= 0 {
		return Status{}, fmt.Errorf("top-up of %d uses: give a positive number", n)
	}
	limits, err := LimitsOf(c)
	if err != nil {
		return Status{}, err
	}
	if len(limits) == 0 {
		return Status{}, newDetailError(fmt.Sprintf("%s has no limit to top up", c.Name), ErrNoLimit)
	}
	longest := limits[len(limits)-1]
	key := longest.Period.Key(now)
	if err := tx.AddExtra(c.ID, key, n); err != nil {
		return Status{}, err
	}
	if err := tx.Audit("usage.top-up", c.ID, fmt.Sprintf("%s: %d extra uses for %s", c.Name, n, key)); err != nil {
		return Status{}, err
	}
	statuses, err := Current(tx, c, now)
	if err != nil {
		return Status{}, err
	}
	return statuses[len(statuses)-1], nil
}

// DayUse is the number of uses counted on one UTC day.
type DayUse struct {
	Day  time.Time // midnight UTC starting the day
	Used int64
}

// History returns the uses counted for credential id on each UTC day from
// the day containing from to the day containing to, both included, with a
// zero for every day nothing was counted. Days older than about 400 days
// are dropped as new days are counted, and read as zero.
func History(tx *vault.Tx, id string, from, to time.Time) ([]DayUse, error) {
	first, last := Day.Start(from), Day.Start(to)
	if last.Before(first) {
		return nil, nil
	}
	counted, err := tx.UsageHistory(id, Day.Key(first), Day.Key(last))
	if err != nil {
		return nil, err
	}
	byDay := make(map[string]int64, len(counted))
	for _, pc := range counted {
		byDay[pc.PeriodKey] = pc.Used
	}
	var out []DayUse
	for d := first; !d.After(last); d = d.AddDate(0, 0, 1) {
		out = append(out, DayUse{Day: d, Used: byDay[Day.Key(d)]})
	}
	return out, nil
}

// tally is what one transaction knows of a credential's counts at a
// moment: its limits, the periods its uses are counted in, and where each
// limit stands.
type tally struct {
	id       string
	periods  []Period           // counted periods, shortest first: the limits' and always Day and Month
	keys     []string           // the current key of each counted period
	counts   []vault.UsageCount // the count under each key, as read
	statuses []Status           // one per limit of the credential, in its order
}

// readTally reads c's counts for the periods containing now.
func readTally(tx *vault.Tx, c *vault.Credential, now time.Time) (*tally, error) {
	limits, err := LimitsOf(c)
	if err != nil {
		return nil, err
	}
	t := &tally{id: c.ID, periods: countedPeriods(limits)}
	usage := Usage{Used: make(map[Period]int64, len(t.periods)), Extra: make(map[Period]int64, len(t.periods))}
	for _, p := range t.periods {
		key := p.Key(now)
		n, err := tx.Usage(c.ID, key)
		if err != nil {
			return nil, err
		}
		t.keys = append(t.keys, key)
		t.counts = append(t.counts, n)
		usage.Used[p], usage.Extra[p] = n.Used, n.Extra
	}
	if t.statuses, err = Statuses(limits, usage, now); err != nil {
		return nil, fmt.Errorf("credential %s: %w", c.Name, err)
	}
	return t, nil
}

// countedPeriods returns the periods a credential's uses are counted in:
// those of its limits, and always the day (for the history) and the month
// (for the month's total, limit or not), shortest first.
func countedPeriods(limits []Limit) []Period {
	var has [Month + 1]bool
	has[Day], has[Month] = true, true
	for _, l := range limits {
		has[l.Period] = true
	}
	var out []Period
	for p := Second; p <= Month; p++ {
		if has[p] {
			out = append(out, p)
		}
	}
	return out
}

// count adds n uses to every counted period and updates the statuses to
// match, then drops counters that have gone stale.
func (t *tally) count(tx *vault.Tx, n int64, now time.Time) error {
	if err := tx.AddUsage(t.id, t.keys, n); err != nil {
		return err
	}
	for i := range t.statuses {
		s := &t.statuses[i]
		s.Used += n
		s.Remaining = max(s.Limit-s.Used, 0)
	}
	return t.prune(tx, now)
}

// prune drops stale counters lazily, when a period's first use is counted:
// the earlier periods of a limit shorter than a day when a new one starts,
// day history past historyDays when a new day starts, and, when a new
// month starts, every earlier period shorter than a day, which catches the
// counters of limits lifted since. Month totals are kept.
func (t *tally) prune(tx *vault.Tx, now time.Time) error {
	for i, p := range t.periods {
		if t.counts[i] != (vault.UsageCount{}) {
			continue // not the period's first use
		}
		var err error
		switch p {
		case Second, Minute, Hour:
			err = tx.PruneUsage(t.id, t.keys[i])
		case Day:
			err = tx.PruneUsage(t.id, Day.Key(now.AddDate(0, 0, -historyDays)))
		case Month:
			for q := Second; q < Day && err == nil; q++ {
				err = tx.PruneUsage(t.id, q.Key(now))
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// decision is the Decision for an allowed use, once counted.
func (t *tally) decision() Decision {
	if len(t.statuses) == 0 {
		return Decision{Allowed: true}
	}
	tightest, _ := Tightest(t.statuses)
	return Decision{Allowed: true, Status: tightest, Limited: true}
}
