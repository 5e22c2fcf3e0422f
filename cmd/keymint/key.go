package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keymint/keymint/apikey"
	"github.com/keymint/keymint/quota"
	"github.com/keymint/keymint/vault"
)

func newKeyCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Manage API keys",
	}
	cmd.AddCommand(newKeyNewCmd(a), newKeyLsCmd(a), newKeyShowCmd(a), newKeyRmCmd(a), newKeyRotateCmd(a), newKeyVerifyCmd(a), newKeyUpdateCmd(a), newKeyImportCmd(a))
	return cmd
}

// keyJSON is a key as -o json shows it. Secret is set only on creation and
// rotation, the one time it is shown.
type keyJSON struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Secret    string     `json:"secret,omitempty"`
	Scopes    []string   `json:"scopes"`
	Limits    []string   `json:"limits"`
	ExpiresAt *time.Time `json:"expires_at"`
	Disabled  bool       `json:"disabled"`
	// LegacySecret: a live secret of the key is an imported one not in
	// keymint's format, to be rotated. Set by ls, show and import.
	LegacySecret bool       `json:"legacy_secret,omitempty"`
	Description  string     `json:"description,omitempty"`
	CreatedAt    time.Time  `json:"created_at"`
	LastUsedAt   *time.Time `json:"last_used_at"`
}

func keyView(k *vault.Key) keyJSON {
	return keyJSON{
		ID:          k.ID,
		Name:        k.Name,
		Scopes:      nonNil(k.Scopes),
		Limits:      limitStrings(k.Limits),
		ExpiresAt:   utcPtr(k.ExpiresAt),
		Disabled:    k.Disabled,
		Description: k.Description,
		CreatedAt:   k.CreatedAt.UTC().Truncate(time.Second),
		LastUsedAt:  utcPtr(k.LastUsedAt),
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func limitStrings(ls []vault.Limit) []string {
	out := []string{}
	for _, l := range ls {
		out = append(out, fmt.Sprintf("%d/%s", l.Count, l.Period))
	}
	return out
}

type keyNewOptions struct {
	scopes      []string
	expires     string
	limits      []string
	description string
}

func newKeyNewCmd(a *app) *cobra.Command {
	var o keyNewOptions
	cmd := &cobra.Command{
		Use:   "new NAME",
		Short: "Create an API key; its secret is printed once",
		Long: `Create an API key named NAME. The secret is printed once, on stdout, and
never stored: only its HMAC is kept. Store it now.`,
		Example: `  keymint key new billing-sync --scope invoices:read --expires 90d
  keymint key new partner-x --limit 8000/month --limit 10/second
  SECRET=$(keymint key new ci-runner --scope "deploy:read deploy:write")`,
		Args: exactArgs(1, "one NAME"),
		RunE: func(_ *cobra.Command, args []string) error {
			return a.runKeyNew(args[0], o)
		},
	}
	cmd.Flags().StringArrayVar(&o.scopes, "scope", nil, "scope the key grants (repeatable; space- or comma-separated)")
	cmd.Flags().StringVar(&o.expires, "expires", "", "expiry: a duration such as 90d or 12h, or a date such as 2027-01-31")
	cmd.Flags().StringVar(&o.description, "description", "", "what the key is for")
	cmd.Flags().StringArrayVar(&o.limits, "limit", nil, "usage limit such as 8000/month or 10/second (repeatable, one per period)")
	return cmd
}

func (a *app) runKeyNew(name string, o keyNewOptions) error {
	if err := vault.ValidateName(name); err != nil {
		return usageError{err}
	}
	scopes, err := parseScopes(o.scopes)
	if err != nil {
		return err
	}
	expires, err := parseExpiry(o.expires, a.now())
	if err != nil {
		return err
	}
	limits, err := parseLimitFlags(o.limits)
	if err != nil {
		return err
	}
	var k *vault.Key
	var secret string
	err = a.update(func(tx *vault.Tx) error {
		settings, err := tx.Settings()
		if err != nil {
			return err
		}
		if secret, err = apikey.Generate(settings.KeyPrefix); err != nil {
			return err
		}
		k = &vault.Key{Credential: vault.Credential{Name: name, Scopes: scopes, ExpiresAt: expires, Limits: limits}, Description: o.description}
		return tx.CreateKey(k, secret)
	})
	if err != nil {
		return err
	}
	if a.json() {
		v := keyView(k)
		v.Secret = secret
		return a.writeJSON(v)
	}
	fmt.Fprintf(a.io.Err, "created key %s (%s); the secret below is shown only this once\n", k.Name, k.ID)
	fmt.Fprintln(a.io.Out, secret)
	return nil
}

func newKeyLsCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List API keys (never their secrets)",
		Args:    noArgs,
		RunE: func(*cobra.Command, []string) error {
			return a.runKeyLs()
		},
	}
}

func (a *app) runKeyLs() error {
	var keys []*vault.Key
	if err := a.view(func(tx *vault.Tx) (err error) {
		keys, err = tx.Keys()
		return err
	}); err != nil {
		return err
	}
	now := a.now()
	if a.json() {
		out := keyViews(keys)
		for i, k := range keys {
			out[i].LegacySecret = k.LegacySecret(now)
		}
		return a.writeJSON(out)
	}
	// A STATUS column only when some key is disabled: the expired ones
	// show in EXPIRES. A SECRET column only when some key has a legacy
	// secret (imported, not in keymint's format).
	withStatus := slices.ContainsFunc(keys, func(k *vault.Key) bool { return k.Disabled })
	withLegacy := slices.ContainsFunc(keys, func(k *vault.Key) bool { return k.LegacySecret(now) })
	t := newTable(a.io.Out, withColumn(withLegacy, "SECRET", withColumn(withStatus, "STATUS", "NAME", "ID", "SCOPES", "EXPIRES", "LAST USED", "CREATED")...)...)
	for _, k := range keys {
		t.row(withColumn(withLegacy, lsLegacy(&k.Credential, now), withColumn(withStatus, status(&k.Credential, now), k.Name, k.ID, strings.Join(k.Scopes, " "), relTime(k.ExpiresAt, now, "never"), relTime(k.LastUsedAt, now, "never"), relTime(&k.CreatedAt, now, ""))...)...)
	}
	return t.flush()
}

// keyViews is keys as -o json lists them: [] rather than null for none.
func keyViews(keys []*vault.Key) []keyJSON {
	out := make([]keyJSON, 0, len(keys))
	for _, k := range keys {
		out = append(out, keyView(k))
	}
	return out
}

func newKeyShowCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:               "show ID|NAME",
		Short:             "Show one API key (never its secret)",
		Args:              exactArgs(1, "one ID or NAME"),
		ValidArgsFunction: a.completeNames(vault.KindKey),
		RunE: func(_ *cobra.Command, args []string) error {
			return a.runKeyShow(args[0])
		},
	}
}

func (a *app) runKeyShow(ref string) error {
	var k *vault.Key
	var usage string
	if err := a.view(func(tx *vault.Tx) (err error) {
		if k, err = tx.Key(ref); err != nil {
			return err
		}
		usage, err = usageSummary(tx, &k.Credential, tx.Now())
		return err
	}); err != nil {
		return lookupHint(err, "key ls")
	}
	now := a.now()
	if a.json() {
		v := keyView(k)
		v.LegacySecret = k.LegacySecret(now)
		return a.writeJSON(v)
	}
	t := newTable(a.io.Out, "FIELD", "VALUE")
	t.row("name", k.Name)
	t.row("id", k.ID)
	t.row("scopes", strings.Join(k.Scopes, " "))
	t.row("limits", strings.Join(limitStrings(k.Limits), " "))
	t.row("usage", usage)
	if k.Description != "" {
		t.row("description", k.Description)
	}
	t.row("expires", timeAndRel(k.ExpiresAt, now, "never"))
	t.row("status", status(&k.Credential, now))
	t.row("created", timeAndRel(&k.CreatedAt, now, ""))
	t.row("last used", timeAndRel(k.LastUsedAt, now, "never"))
	t.row("secrets", secretsSummary(k.Secrets, now))
	if k.LegacySecret(now) {
		t.row("legacy", legacyMark)
	}
	return t.flush()
}

// lsLegacy is the SECRET cell of ls: LEGACY for a credential with a
// legacy secret.
func lsLegacy(c *vault.Credential, now time.Time) string {
	if c.LegacySecret(now) {
		return "LEGACY"
	}
	return "-"
}

// status says whether a credential may be used, short of its secret and
// limits: active, expired or disabled (or both).
func status(c *vault.Credential, now time.Time) string {
	switch {
	case c.Disabled && c.Expired(now):
		return "disabled, expired"
	case c.Disabled:
		return "disabled"
	case c.Expired(now):
		return "expired"
	}
	return "active"
}

// withColumn is cells with one more at the end if with.
func withColumn(with bool, last string, cells ...string) []string {
	if with {
		return append(cells, last)
	}
	return cells
}

// timeAndRel shows an absolute time and how far it is from now.
func timeAndRel(t *time.Time, now time.Time, never string) string {
	if t == nil {
		return never
	}
	return t.UTC().Format(time.RFC3339) + " (" + relTime(t, now, never) + ")"
}

func secretsSummary(secrets []vault.SecretHash, now time.Time) string {
	live, retiring := 0, 0
	for _, s := range secrets {
		switch {
		case s.RetiresAt == nil:
			live++
		case now.Before(*s.RetiresAt):
			retiring++
		}
	}
	if retiring == 0 {
		return plural(live, "active secret")
	}
	return fmt.Sprintf("%s, %s in grace", plural(live, "active secret"), plural(retiring, "old secret"))
}

func newKeyRmCmd(a *app) *cobra.Command {
	return a.destructive(&cobra.Command{
		Use:               "rm ID|NAME...",
		Aliases:           []string{"remove", "delete"},
		Short:             "Delete API keys; if one is missing, none is deleted",
		Args:              requireArgs(1, "ID or NAME of the key(s) to delete"),
		ValidArgsFunction: a.completeNames(vault.KindKey),
		RunE: func(_ *cobra.Command, args []string) error {
			return a.runKeyRm(args)
		},
	}, nil, deleteQuestion("key"))
}

func (a *app) runKeyRm(refs []string) error {
	var removed []*vault.Key
	if err := a.update(func(tx *vault.Tx) (err error) {
		removed, err = tx.DeleteKeys(refs...)
		return err
	}); err != nil {
		return notFoundHint(err, "key ls")
	}
	if a.json() {
		return a.writeJSON(keyViews(removed))
	}
	for _, k := range removed {
		fmt.Fprintf(a.io.Out, "deleted key %s (%s)\n", k.Name, k.ID)
	}
	return nil
}

// lookupHint says where to find the names when a lookup failed.
func lookupHint(err error, lsCmd string) error {
	if errors.Is(err, vault.ErrNotFound) {
		return fmt.Errorf("%w (see `keymint %s`)", err, lsCmd)
	}
	return err
}

// notFoundHint adds, to a change that failed on a missing name, that
// nothing was changed and where to find the names.
func notFoundHint(err error, lsCmd string) error {
	if errors.Is(err, vault.ErrNotFound) {
		return fmt.Errorf("%w; nothing was changed (see `keymint %s`)", err, lsCmd)
	}
	return err
}

type keyRotateOptions struct {
	grace time.Duration
}

func newKeyRotateCmd(a *app) *cobra.Command {
	var o keyRotateOptions
	cmd := &cobra.Command{
		Use:   "rotate ID|NAME",
		Short: "Give an API key a new secret; the old one works until --grace ends",
		Long: `Give an API key a new secret, printed once; the secrets it had keep
working until --grace ends (at once with --grace 0s).

An expired key cannot be rotated, as its new secret would not work either:
give it a new expiry first (keymint key update --expires), create a new key
instead, or remove it. A disabled key may be rotated, and stays disabled.

EXIT CODES
  0  rotated;  1  no such key, the key has expired, or the vault could not
  be written;  2  bad usage, such as a negative --grace.`,
		Args:              exactArgs(1, "one ID or NAME"),
		ValidArgsFunction: a.completeNames(vault.KindKey),
		RunE: func(_ *cobra.Command, args []string) error {
			return a.runKeyRotate(args[0], o)
		},
	}
	durationVar(cmd.Flags(), &o.grace, "grace", 24*time.Hour, "how long the old secret keeps working (such as 12h or 7d)")
	// With no grace the secret in use stops working at once.
	return a.destructive(cmd, func() bool { return o.grace == 0 }, func(args []string) string {
		return fmt.Sprintf("Rotate key %s with no grace, so that its current secret stops working at once?", args[0])
	})
}

func (a *app) runKeyRotate(ref string, o keyRotateOptions) error {
	if o.grace < 0 {
		return usagef("--grace must not be negative")
	}
	var k *vault.Key
	var secret string
	err := a.update(func(tx *vault.Tx) error {
		settings, err := tx.Settings()
		if err != nil {
			return err
		}
		if secret, err = apikey.Generate(settings.KeyPrefix); err != nil {
			return err
		}
		k, err = tx.RotateKey(ref, secret, o.grace)
		return err
	})
	if err != nil {
		return notFoundHint(a.expiredHint(err), "key ls")
	}
	if a.json() {
		v := keyView(k)
		v.Secret = secret
		return a.writeJSON(v)
	}
	fmt.Fprintf(a.io.Err, "rotated key %s (%s); %s; the new secret below is shown only this once\n", k.Name, k.ID, oldSecretFor(o.grace))
	fmt.Fprintln(a.io.Out, secret)
	return nil
}

// expiredHint says what to do about a credential the vault refused to
// rotate because it has expired: a new secret would not work, so give it
// a new expiry first, replace it or remove it.
func (a *app) expiredHint(err error) error {
	var ee *vault.ExpiredError
	if !errors.As(err, &ee) {
		return err
	}
	return fmt.Errorf("%s %s expired %s (%s), so a new secret would not work: give it a new expiry with `keymint %s update %s --expires 90d` first, create a new %s with `keymint %s new` to replace it, or remove this one with `keymint %s rm %s`",
		ee.Kind, ee.Name, ee.ExpiresAt.UTC().Format(time.RFC3339), relTime(&ee.ExpiresAt, a.now(), ""), ee.Kind, ee.Name, ee.Kind, ee.Kind, ee.Kind, ee.Name)
}

func newKeyVerifyCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "verify",
		Short: "Check an API key read from stdin; exit 0 if valid, 1 if not",
		Long: `Read an API key from stdin and check it: exit 0 when it is valid, 1 when
it is malformed, unknown, retired, expired or over quota. The checksum
rejects a mistyped key before any lookup. A valid key's check counts as one
use of it (see keymint usage); one refused over quota does not.

With -o json it prints {"valid": true, "key": {...}} and, for a key with a
limit, "usage" (as keymint usage show -o json gives it); a refusal is the
JSON error on stderr that every command gives with -o json.`,
		Example: `  printf '%s' "$KEY" | keymint key verify`,
		Args:    noArgs,
		RunE: func(*cobra.Command, []string) error {
			return a.runKeyVerify()
		},
	}
}

func (a *app) runKeyVerify() error {
	secret, err := a.io.readLine()
	if err != nil {
		return err
	}
	secret = strings.TrimSpace(secret)
	_, parseErr := apikey.Parse(secret)
	if parseErr != nil && (!errors.Is(parseErr, apikey.ErrMalformed) || vault.ValidateLegacySecret(secret) != nil) {
		// Neither keymint's format nor a legacy (imported) secret's.
		return fmt.Errorf("invalid key: %w", parseErr)
	}
	k, d, now, err := a.useKey(secret)
	if errors.Is(err, vault.ErrNotFound) && parseErr != nil {
		// Not an imported legacy key either.
		return fmt.Errorf("invalid key: %w", parseErr)
	}
	if errors.Is(err, vault.ErrNotFound) {
		return errors.New("invalid key: not known to this vault, or retired")
	}
	if err != nil {
		return err
	}
	if a.json() {
		out := map[string]any{"valid": true, "key": keyView(k)}
		if d.Limited {
			out["usage"] = rowFromStatus(subject{key: k}, d.Status, now)
		}
		return a.writeJSON(out)
	}
	if d.Limited {
		fmt.Fprintf(a.io.Out, "valid: key %s (%s); %d of %d uses left %s\n", k.Name, k.ID, d.Status.Remaining, d.Status.Limit, thisPeriod(d.Status.Period))
		return nil
	}
	fmt.Fprintf(a.io.Out, "valid: key %s (%s)\n", k.Name, k.ID)
	return nil
}

// useKey finds the key whose secret this is and counts one use of it, in
// one write transaction, at the vault's time now: a key over its limit is
// refused and its use not counted.
func (a *app) useKey(secret string) (k *vault.Key, d quota.Decision, now time.Time, err error) {
	err = a.update(func(tx *vault.Tx) (err error) {
		// Usable now (vault.Usable, as the server's /verify
		// asks): a live secret of a key that has not expired.
		k, err = tx.KeyBySecret(secret)
		if err != nil {
			return err
		}
		now = tx.Now()
		if d, err = consumeUse(tx, &k.Credential); err != nil {
			return err
		}
		if err = tx.TouchKey(k.ID); err == nil {
			// This check is the key's last use; the lookup
			// leaves the field empty.
			k.LastUsedAt = &now
		}
		return err
	})
	return k, d, now, err
}
