package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keymint/keymint/vault"
)

func newAuditCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Read the vault's audit log and check its hash chain",
	}
	cmd.AddCommand(newAuditLsCmd(a), newAuditVerifyCmd(a))
	return cmd
}

// auditJSON is an audit entry as `audit ls -o json` prints it, one object
// a line. Hash and prev are hex, so a script can check links itself.
type auditJSON struct {
	Seq        uint64    `json:"seq"`
	Time       time.Time `json:"time"`
	Action     string    `json:"action"`
	Credential string    `json:"credential"`
	Detail     string    `json:"detail"`
	Actor      string    `json:"actor"`
	Command    string    `json:"command,omitempty"`
	Hash       string    `json:"hash"`
}

func auditView(e vault.AuditEntry) auditJSON {
	return auditJSON{
		Seq:        e.Seq,
		Time:       e.Time.UTC(),
		Action:     e.Action,
		Credential: e.ID,
		Detail:     e.Detail,
		Actor:      e.Actor,
		Command:    e.Command,
		Hash:       fmt.Sprintf("%x", e.Hash),
	}
}

type auditLsOptions struct {
	since       string
	credentials []string
	actions     []string
	limit       int
	before      uint64
	after       uint64
	reverse     bool
}

func newAuditLsCmd(a *app) *cobra.Command {
	var o auditLsOptions
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List audit entries, newest first",
		Long: `List the audit log's entries, newest first (--reverse for oldest first).
The chain is checked as it is read: a log that does not verify is an error
(see keymint audit verify), never a partial listing.

Filters combine (an entry must pass all of them):
  --since      a duration back from now (7d, 12h) or a date or RFC 3339 time
  --credential a name or id (repeatable); a name matches every id that has
               carried it, so a removed credential's history is still found
  --action     an action such as key.delete (repeatable); a word without a
               dot matches its group: --action key is key.create, key.rotate...

Paging: --limit N shows at most N entries; the next page, in the same order,
is --before SEQ (newest first) or --reverse --after SEQ, with SEQ the last
sequence number shown. When entries are left, text output says so on
stderr.

-o json prints JSON Lines: one object per entry, one entry per line.`,
		Example: `  keymint audit ls --since 7d --action key
  keymint audit ls --credential billing-sync -o json
  keymint audit ls --limit 20 --before 181`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			return a.runAuditLs(o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.since, "since", "", "only entries from this long ago (7d, 12h) or since this date or RFC 3339 time")
	f.StringArrayVar(&o.credentials, "credential", nil, "only entries about this credential, by name or id (repeatable)")
	f.StringArrayVar(&o.actions, "action", nil, "only this action, such as key.delete, or group, such as key (repeatable)")
	f.IntVar(&o.limit, "limit", 0, "show at most N entries (0: all)")
	f.Uint64Var(&o.before, "before", 0, "only entries with a sequence number below SEQ (the next page, newest first)")
	f.Uint64Var(&o.after, "after", 0, "only entries with a sequence number above SEQ (the next page, with --reverse)")
	f.BoolVar(&o.reverse, "reverse", false, "oldest first")
	return cmd
}

// parseSince reads --since: a duration back from now, or an RFC 3339 time
// or a date (midnight UTC).
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := parseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, usagef("invalid --since %q: give a positive duration", s)
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, usagef("invalid --since %q: use a duration such as 7d or 12h, or a date such as 2026-11-01", s)
}

// auditFilter decides which entries `audit ls` shows.
type auditFilter struct {
	since   *time.Time
	ids     map[string]bool // nil: any credential
	actions []string
	before  uint64
	after   uint64
}

func (f *auditFilter) keep(e vault.AuditEntry) bool {
	if f.since != nil && e.Time.Before(*f.since) {
		return false
	}
	if f.before != 0 && e.Seq >= f.before {
		return false
	}
	if e.Seq <= f.after {
		return false
	}
	if f.ids != nil && !f.ids[e.ID] {
		return false
	}
	if len(f.actions) > 0 && !slices.ContainsFunc(f.actions, func(act string) bool {
		return e.Action == act || !strings.Contains(act, ".") && strings.HasPrefix(e.Action, act+".")
	}) {
		return false
	}
	return true
}

// credentialIDs returns the ids refs name: a ref that is an id in the log,
// the id of a live key, client, user or permission group of that name, and
// every id whose entries carried that name (created, renamed, deleted), so
// that a removed credential is found by its old name.
func credentialIDs(tx *vault.Tx, log []vault.AuditEntry, refs []string) map[string]bool {
	ids := map[string]bool{}
	for _, ref := range refs {
		ids[ref] = true
		if k, err := tx.Key(ref); err == nil {
			ids[k.ID] = true
		}
		if c, err := tx.Client(ref); err == nil {
			ids[c.ID] = true
		}
		if u, err := tx.User(ref); err == nil {
			ids[u.ID] = true
		}
		if g, err := tx.PermissionGroup(ref); err == nil {
			ids[g.ID] = true
		}
		for _, e := range log {
			if e.ID != "" && detailNames(e.Detail, ref) {
				ids[e.ID] = true
			}
		}
	}
	return ids
}

// detailNames reports whether an entry's detail names name: the detail of
// a credential's entries is its name, "old -> new" for a rename, or
// "name: ..." for users and groups.
func detailNames(detail, name string) bool {
	if detail == name || strings.HasPrefix(detail, name+": ") {
		return true
	}
	if old, nu, ok := strings.Cut(detail, " -> "); ok {
		return old == name || nu == name
	}
	return false
}

func (a *app) runAuditLs(o auditLsOptions) error {
	if o.limit < 0 {
		return usagef("--limit must not be negative")
	}
	f := auditFilter{actions: o.actions, before: o.before, after: o.after}
	if o.since != "" {
		t, err := parseSince(o.since, a.now())
		if err != nil {
			return err
		}
		f.since = &t
	}
	for _, act := range o.actions {
		if act == "" {
			return usagef("invalid --action \"\": give an action such as key.delete, or a group such as key")
		}
	}
	var shown []vault.AuditEntry
	more := false
	err := a.view(func(tx *vault.Tx) error {
		log, err := tx.VerifyAuditLog()
		if err != nil {
			return fmt.Errorf("%w; nothing is listed from a log that does not verify (see `keymint audit verify`)", err)
		}
		if len(o.credentials) > 0 {
			f.ids = credentialIDs(tx, log, o.credentials)
		}
		shown = shown[:0]
		for _, e := range log {
			if f.keep(e) {
				shown = append(shown, e)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !o.reverse {
		slices.Reverse(shown)
	}
	if o.limit > 0 && len(shown) > o.limit {
		shown, more = shown[:o.limit], true
	}
	if a.json() {
		enc := json.NewEncoder(a.io.Out)
		enc.SetEscapeHTML(false)
		for _, e := range shown {
			if err := enc.Encode(auditView(e)); err != nil {
				return err
			}
		}
		return nil
	}
	now := a.now()
	t := newTable(a.io.Out, "SEQ", "TIME", "ACTION", "CREDENTIAL", "DETAIL", "ACTOR", "COMMAND")
	for _, e := range shown {
		at := e.Time
		t.row(strconv.FormatUint(e.Seq, 10), at.UTC().Format(time.RFC3339)+" ("+relTime(&at, now, "")+")", e.Action, e.ID, maskSecrets(e.Detail), e.Actor, e.Command)
	}
	if err := t.flush(); err != nil {
		return err
	}
	if more {
		last := shown[len(shown)-1].Seq
		flag := "--before " + strconv.FormatUint(last, 10)
		if o.reverse {
			flag = "--reverse --after " + strconv.FormatUint(last, 10)
		}
		fmt.Fprintf(a.io.Err, "more entries: add %s for the next page\n", flag)
	}
	return nil
}

type auditVerifyJSON struct {
	Valid   bool   `json:"valid"`
	Entries int    `json:"entries"`
	LastSeq uint64 `json:"last_seq"`
}

func newAuditVerifyCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "verify",
		Short: "Check the audit log's hash chain to the end the vault's head records",
		Long: `Check the audit log: every entry opens under the vault's data key at its
own place, carries the hash of its contents and of the entry before it, the
sequence numbers have no gap, and the log ends at the entry the vault's
sealed head names. So a removed, reordered, altered or added entry, and a
log cut short at its end, are all detected. This is the chain check that
keymint vault verify runs, on the audit log alone.

EXIT CODES
  0  the chain is whole;  1  it is not (the message names the first entry
  that is wrong), or the vault could not be opened.`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			return a.runAuditVerify()
		},
	}
}

func (a *app) runAuditVerify() error {
	var log []vault.AuditEntry
	err := a.view(func(tx *vault.Tx) (err error) {
		log, err = tx.VerifyAuditLog()
		return err
	})
	if errors.Is(err, vault.ErrAuditChain) {
		return fmt.Errorf("%w; %d entries before it verify", err, len(log))
	}
	if err != nil {
		return err
	}
	var last uint64
	if len(log) > 0 {
		last = log[len(log)-1].Seq
	}
	if a.json() {
		return a.writeJSON(auditVerifyJSON{Valid: true, Entries: len(log), LastSeq: last})
	}
	_, err = fmt.Fprintf(a.io.Out, "valid: the audit chain is whole: %d entries, the last (%d) the one the vault's head names\n", len(log), last)
	return err
}
