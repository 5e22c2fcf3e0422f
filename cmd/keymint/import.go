package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keymint/keymint/apikey"
	"github.com/keymint/keymint/vault"
)

// The import commands bring existing credentials in unchanged, from JSON
// Lines on stdin or in a --file (never argv, which other users can read).
// Every line is checked, and every name looked up in the vault, before
// anything is written; then all records go in one transaction. A secret
// not in keymint's format is kept (as its HMAC, like any other) marked
// legacy: shown in ls and show until it is rotated, and throttled per
// client by the server.

type importOptions struct {
	file string
}

// maxImportLine bounds one line of input; maxImportRecords the records.
const (
	maxImportLine    = 64 << 10
	maxImportRecords = 100_000
	maxImportErrors  = 20
)

func importFlags(cmd *cobra.Command, o *importOptions) {
	cmd.Flags().StringVar(&o.file, "file", "", "read the JSON Lines from this file rather than stdin")
}

func newKeyImportCmd(a *app) *cobra.Command {
	var o importOptions
	cmd := &cobra.Command{
		Use:   "import",
		Short: "Import existing API keys, secrets included, from JSON Lines",
		Long: `Import existing API keys unchanged from JSON Lines on stdin (or --file), one
object a line:

  {"name": "partner-x", "secret": "...", "scopes": ["a:read"], "expires_at": "2027-01-31T00:00:00Z", "limits": ["8000/month"]}

"scope" may give the scopes as one space-separated string instead; "description"
is optional. Only each secret's HMAC is stored. A secret in keymint's format
must pass its checksum; any other secret of 8 to 512 printable ASCII characters
is kept as a legacy secret, marked LEGACY in ls and show until it is rotated.
Every line is checked, and every name looked up, before anything is written;
then all keys are stored in one transaction, or none.`,
		Example: `  keymint key import < keys.jsonl
  keymint key import --file keys.jsonl -o json`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error { return a.runKeyImport(o) },
	}
	importFlags(cmd, &o)
	return cmd
}

func newClientImportCmd(a *app) *cobra.Command {
	var o importOptions
	cmd := &cobra.Command{
		Use:   "import",
		Short: "Import existing OAuth clients, secrets included, from JSON Lines",
		Long: `Import existing confidential OAuth clients unchanged from JSON Lines on stdin
(or --file), one object a line:

  {"name": "soap-app", "client_id": "3f2a…", "client_secret": "...", "scopes": ["a:read"],
   "grant_types": ["client_credentials"], "token_ttl": "1h", "audience": ["https://api.example"]}

"client_id" is optional: given, it is kept (8 to 128 letters, digits, '.', '_',
'~' or '-'); left out, keymint assigns one. "scope", "redirect_uris", "limits",
"expires_at", "description", "url", "policy_url" and "tos_url" are optional too.
Secrets are handled as by key import: only the HMAC is stored, and one not in
keymint's format is kept as a legacy secret. All or nothing.`,
		Example: `  keymint client import < clients.jsonl`,
		Args:    noArgs,
		RunE:    func(*cobra.Command, []string) error { return a.runClientImport(o) },
	}
	importFlags(cmd, &o)
	return cmd
}

// importLine is one non-blank line of input and its number.
type importLine struct {
	n    int
	text []byte
}

// readImport reads the non-blank lines of stdin or o.file.
func (a *app) readImport(o importOptions) ([]importLine, error) {
	var in io.Reader = a.io.In
	if o.file != "" {
		f, err := os.Open(o.file)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		in = f
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64<<10), maxImportLine)
	var lines []importLine
	for n := 1; sc.Scan(); n++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		if len(lines) == maxImportRecords {
			return nil, usagef("more than %d records: split the input", maxImportRecords)
		}
		lines = append(lines, importLine{n, []byte(text)})
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, usagef("line %d: longer than %d bytes", len(lines)+1, maxImportLine)
		}
		return nil, fmt.Errorf("read input: %w", err)
	}
	if len(lines) == 0 {
		return nil, usagef("no records: give JSON Lines on stdin or with --file")
	}
	return lines, nil
}

// importErrors gathers the errors of every line, so that one run names
// them all.
type importErrors []error

func (e *importErrors) add(line int, format string, args ...any) {
	*e = append(*e, fmt.Errorf("line %d: %s", line, fmt.Sprintf(format, args...)))
}

func (e importErrors) err() error {
	if len(e) == 0 {
		return nil
	}
	shown := e
	if len(shown) > maxImportErrors {
		shown = shown[:maxImportErrors]
	}
	msgs := make([]string, 0, len(shown)+1)
	for _, err := range shown {
		msgs = append(msgs, err.Error())
	}
	if len(e) > len(shown) {
		msgs = append(msgs, fmt.Sprintf("and %d more", len(e)-len(shown)))
	}
	return usageError{fmt.Errorf("nothing imported: %s", strings.Join(msgs, "\n  "))}
}

// decodeLine decodes one line strictly. Its errors never quote the input,
// which holds a secret.
func decodeLine(text []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(text)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			return fmt.Errorf("not a JSON object (syntax error at byte %d)", syn.Offset)
		case errors.As(err, &typ):
			return fmt.Errorf("field %q: want a %s", typ.Field, typ.Type)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return errors.New(strings.TrimPrefix(err.Error(), "json: "))
		}
		return errors.New("not a JSON object")
	}
	if dec.More() {
		return errors.New("more than one JSON value")
	}
	return nil
}

// checkImportSecret says what is wrong with an imported secret, without
// quoting it: a keymint-format secret must pass its checksum, any other
// must be a legacy one ([vault.ValidateLegacySecret]).
func checkImportSecret(secret string) (legacy bool, err error) {
	switch _, err := apikey.Parse(secret); {
	case err == nil:
		return false, nil
	case !errors.Is(err, apikey.ErrMalformed):
		return false, err
	}
	return true, vault.ValidateLegacySecret(secret)
}

// importScopes is "scopes" or "scope", not both.
func importScopes(list []string, one string) ([]string, error) {
	if len(list) > 0 && one != "" {
		return nil, errors.New(`give "scopes" or "scope", not both`)
	}
	if one != "" {
		list = []string{one}
	}
	return parseScopes(list)
}

func importExpiry(s string) (*time.Time, error) {
	if s == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return nil, fmt.Errorf("expires_at %q: want an RFC 3339 time", s)
	}
	return &t, nil
}

// commonChecks are the checks of name, secret and names and secrets seen
// on earlier lines.
type importSeen struct {
	names, secrets, ids map[string]int
}

func newImportSeen() *importSeen {
	return &importSeen{names: map[string]int{}, secrets: map[string]int{}, ids: map[string]int{}}
}

func (s *importSeen) check(errs *importErrors, n int, name, secretField, secret string) {
	if name == "" {
		errs.add(n, `"name" is missing`)
	} else if err := vault.ValidateName(name); err != nil {
		errs.add(n, "%v", err)
	} else if prev, ok := s.names[name]; ok {
		errs.add(n, "name %q is also on line %d", name, prev)
	} else if prev, ok := s.ids[name]; ok {
		errs.add(n, "name %q is the client_id on line %d", name, prev)
	} else {
		s.names[name] = n
	}
	if secret == "" {
		errs.add(n, "%q is missing", secretField)
	} else if _, err := checkImportSecret(secret); err != nil {
		errs.add(n, "%s: %v", secretField, err)
	} else if prev, ok := s.secrets[secret]; ok {
		errs.add(n, "%s is the same as on line %d", secretField, prev)
	} else {
		s.secrets[secret] = n
	}
}

type keyImport struct {
	Name        string   `json:"name"`
	Secret      string   `json:"secret"`
	Scopes      []string `json:"scopes"`
	Scope       string   `json:"scope"`
	ExpiresAt   string   `json:"expires_at"`
	Limits      []string `json:"limits"`
	Description string   `json:"description"`
}

// importInto says how records of one kind go into the vault: the names
// and ids a record is found by, how to look one up, the clash message
// (with %q for the ref), and how to store a record with its secret.
type importInto[R any] struct {
	refs   func(R) []string
	lookup func(ref string) error
	clash  string
	store  func(R, string) error
}

// importAll stores recs, each with its secret, after checking that none is
// in the vault already under any of its refs: all or nothing, every clash
// named by its line.
func importAll[R any](lines []importLine, recs []R, secrets []string, in importInto[R]) error {
	var clash importErrors
	for i, r := range recs {
		for _, ref := range in.refs(r) {
			if ref == "" {
				continue
			}
			switch err := in.lookup(ref); {
			case err == nil:
				clash.add(lines[i].n, in.clash, ref)
			case !errors.Is(err, vault.ErrNotFound):
				return err
			}
		}
	}
	if err := clash.err(); err != nil {
		return err
	}
	for i, r := range recs {
		if err := in.store(r, secrets[i]); err != nil {
			return fmt.Errorf("line %d: %w", lines[i].n, err)
		}
	}
	return nil
}

func (a *app) runKeyImport(o importOptions) error {
	lines, err := a.readImport(o)
	if err != nil {
		return err
	}
	var errs importErrors
	seen := newImportSeen()
	keys := make([]*vault.Key, len(lines))
	secrets := make([]string, len(lines))
	for i, l := range lines {
		var in keyImport
		if err := decodeLine(l.text, &in); err != nil {
			errs.add(l.n, "%v", err)
			continue
		}
		seen.check(&errs, l.n, in.Name, "secret", in.Secret)
		scopes, err := importScopes(in.Scopes, in.Scope)
		if err != nil {
			errs.add(l.n, "%v", err)
		}
		expires, err := importExpiry(in.ExpiresAt)
		if err != nil {
			errs.add(l.n, "%v", err)
		}
		limits, err := parseLimitFlags(in.Limits)
		if err != nil {
			errs.add(l.n, "limits: %v", err)
		}
		keys[i] = &vault.Key{Credential: vault.Credential{Name: in.Name, Scopes: scopes, ExpiresAt: expires, Limits: limits}, Description: in.Description}
		secrets[i] = in.Secret
	}
	if err := errs.err(); err != nil {
		return err
	}
	err = a.update(func(tx *vault.Tx) error {
		return importAll(lines, keys, secrets, importInto[*vault.Key]{
			refs:   func(k *vault.Key) []string { return []string{k.Name} },
			lookup: func(ref string) error { _, err := tx.Key(ref); return err },
			clash:  "key %q is already in the vault",
			store:  tx.ImportKey,
		})
	})
	if err != nil {
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
	legacy := 0
	t := newTable(a.io.Out, "NAME", "ID", "SECRET")
	for _, k := range keys {
		t.row(k.Name, k.ID, secretKind(&k.Credential, now))
		if k.LegacySecret(now) {
			legacy++
		}
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintf(a.io.Err, "imported %s%s\n", plural(len(keys), "key"), legacyNote(legacy, "key rotate"))
	return nil
}

type clientImport struct {
	Name         string   `json:"name"`
	ClientID     string   `json:"client_id"`
	ClientSecret string   `json:"client_secret"`
	Scopes       []string `json:"scopes"`
	Scope        string   `json:"scope"`
	GrantTypes   []string `json:"grant_types"`
	RedirectURIs []string `json:"redirect_uris"`
	TokenTTL     string   `json:"token_ttl"`
	Audience     []string `json:"audience"`
	Limits       []string `json:"limits"`
	ExpiresAt    string   `json:"expires_at"`
	Description  string   `json:"description"`
	URL          string   `json:"url"`
	PolicyURL    string   `json:"policy_url"`
	TOSURL       string   `json:"tos_url"`
}

func (a *app) runClientImport(o importOptions) error {
	lines, err := a.readImport(o)
	if err != nil {
		return err
	}
	var errs importErrors
	seen := newImportSeen()
	clients := make([]*vault.Client, len(lines))
	secrets := make([]string, len(lines))
	for i, l := range lines {
		var in clientImport
		if err := decodeLine(l.text, &in); err != nil {
			errs.add(l.n, "%v", err)
			continue
		}
		if in.ClientID != "" {
			switch prev, ok := seen.ids[in.ClientID]; {
			case !vault.ValidClientID(in.ClientID):
				errs.add(l.n, "client_id %q: use 8 to 128 letters, digits, '.', '_', '~' or '-' (or a keymint cl_ id)", in.ClientID)
			case ok:
				errs.add(l.n, "client_id %q is also on line %d", in.ClientID, prev)
			case seen.names[in.ClientID] != 0:
				errs.add(l.n, "client_id %q is the name on line %d", in.ClientID, seen.names[in.ClientID])
			default:
				seen.ids[in.ClientID] = l.n
			}
		}
		seen.check(&errs, l.n, in.Name, "client_secret", in.ClientSecret)
		scopes, err := importScopes(in.Scopes, in.Scope)
		if err != nil {
			errs.add(l.n, "%v", err)
		}
		ttl := defaultTokenTTL
		if in.TokenTTL != "" {
			if ttl, err = parseDuration(in.TokenTTL); err != nil {
				errs.add(l.n, "token_ttl: %v", err)
				continue
			}
		}
		expires, err := importExpiry(in.ExpiresAt)
		if err != nil {
			errs.add(l.n, "%v", err)
		}
		// The flags of client new, checked as it checks them.
		c, err := clientNewOptions{
			grants:       in.GrantTypes,
			redirectURIs: in.RedirectURIs,
			scopes:       scopes,
			audience:     in.Audience,
			tokenTTL:     ttl,
			description:  in.Description,
			url:          in.URL,
			policyURL:    in.PolicyURL,
			tosURL:       in.TOSURL,
			limits:       in.Limits,
		}.client(in.Name)
		if err != nil {
			if vault.ValidateName(in.Name) == nil {
				errs.add(l.n, "%v", importFlagNames(err))
			}
			continue
		}
		c.ID = in.ClientID
		c.ExpiresAt = expires
		clients[i], secrets[i] = c, in.ClientSecret
	}
	if err := errs.err(); err != nil {
		return err
	}
	err = a.update(func(tx *vault.Tx) error {
		return importAll(lines, clients, secrets, importInto[*vault.Client]{
			refs:   func(c *vault.Client) []string { return []string{c.Name, c.ID} },
			lookup: func(ref string) error { _, err := tx.Client(ref); return err },
			clash:  "a client named or with the client_id %q is already in the vault",
			store:  tx.ImportClient,
		})
	})
	if err != nil {
		return err
	}
	now := a.now()
	if a.json() {
		out := clientViews(clients, groupNames{})
		for i, c := range clients {
			out[i].LegacySecret = c.LegacySecret(now)
		}
		return a.writeJSON(out)
	}
	legacy := 0
	t := newTable(a.io.Out, "NAME", "CLIENT ID", "SECRET")
	for _, c := range clients {
		t.row(c.Name, c.ID, secretKind(&c.Credential, now))
		if c.LegacySecret(now) {
			legacy++
		}
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintf(a.io.Err, "imported %s%s\n", plural(len(clients), "client"), legacyNote(legacy, "client rotate-secret"))
	return nil
}

// importFlagNames turns client new's flag names in an error into the
// import's field names.
func importFlagNames(err error) string {
	return strings.NewReplacer(
		"--grant", "grant_types", "--redirect-uri", "redirect_uris", "--scope", "scopes",
		"--token-ttl", "token_ttl", "--audience", "audience", "--limit", "limits",
		"--policy-url", "policy_url", "--tos-url", "tos_url", "--url", "url",
	).Replace(err.Error())
}

// secretKind is the SECRET column of an import.
func secretKind(c *vault.Credential, now time.Time) string {
	if c.LegacySecret(now) {
		return legacyMark
	}
	return "keymint"
}

// legacyMark is how ls and show mark a credential with a legacy secret.
const legacyMark = "legacy secret — rotate it"

func legacyNote(n int, rotate string) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("; %s not in keymint's format: rotate them (keymint %s NAME)", plural(n, "legacy secret"), rotate)
}
