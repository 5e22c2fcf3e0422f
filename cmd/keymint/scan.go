package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func newScanCmd(a *app) *cobra.Command {
	var o scanOptions
	cmd := &cobra.Command{
		Use:   "scan PATH... | scan -",
		Short: "Find keymint secrets in files or stdin, say which credential each is, and optionally revoke them",
		Long: `Find keymint-format secrets (API keys, client secrets, refresh tokens) in
files, directories (walked) or stdin ("-"), and say for each where it is
(FILE:LINE:COLUMN, the column in bytes from 1), the secret masked to its
prefix, and what it is in this vault: live (the key, client or refresh token
it belongs to), retired (a rotated secret whose grace has passed), expired,
or unknown (never this vault's, or its credential was removed). A secret is
never printed. Only secrets whose checksum is right are reported, so random
strings of the same shape, and mistyped secrets, are not.

Directories are walked without following symbolic links; .git/objects
(compressed, binary) is skipped, the rest of .git scanned; a file with a NUL
byte in its first 8000 bytes is binary and skipped, as git decides. To scan
history, pipe it: git log -p | keymint scan -

Found secrets are looked up in the vault, which is opened only when there
are some. If it cannot be opened (no vault here, nothing to unlock it), they
are reported as "unverified" and count as live.

--revoke removes the credentials of the live secrets found, all or none, in
one transaction (refresh tokens: their families are revoked); with --grace D
it rotates keys and clients instead, printing their new secrets once on
stdout, while the secrets found keep working for D. It asks first on a
terminal; --yes skips the question, and without a terminal (or when
scanning stdin) --yes is required.

-o json prints JSON Lines: one object per secret found, then one per
credential removed or rotated.

EXIT CODES
  0  no live or unverified secret found;  1  live or unverified secrets were
  found (also after --revoke: the files still hold them), a file could not
  be read, or the vault could not be changed;  2  bad usage, such as a PATH
  that does not exist.`,
		Example: `  keymint scan .
  git log -p | keymint scan -
  keymint scan --revoke --yes deploy/
  keymint scan --revoke --grace 24h config.yaml`,
		Args: requireArgs(1, "PATH to scan (a file, a directory, or - for stdin)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.graceSet = cmd.Flags().Changed("grace")
			return a.runScan(args, o)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.revoke, "revoke", false, "remove the credentials of the live secrets found (all or none)")
	durationVar(f, &o.grace, "grace", 0, "with --revoke: rotate keys and clients instead, the found secrets working this long more (such as 24h)")
	f.BoolVarP(&o.yes, "yes", "y", false, "with --revoke: do not ask for confirmation")
	return cmd
}

type scanOptions struct {
	revoke   bool
	grace    time.Duration
	graceSet bool
	yes      bool
}

// Status of a secret found, in this vault.
const (
	scanLive       = "live"
	scanRetired    = "retired"
	scanExpired    = "expired"
	scanUnknown    = "unknown"
	scanUnverified = "unverified"
)

// Kinds of credential a secret found can be.
const (
	scanKindKey     = "key"
	scanKindClient  = "client"
	scanKindRefresh = "refresh_token"
)

// scanHit is one secret found at one place. The secret itself stays in
// memory, for the lookup: it is never printed.
type scanHit struct {
	file      string
	line, col int
	secret    string
}

// scanResult is what the vault says a secret is.
type scanResult struct {
	status   string
	kind     string // "" when unknown
	id, name string
	family   string // refresh tokens: the family to revoke
}

// scanJSON is a secret found as -o json prints it.
type scanJSON struct {
	File   string `json:"file"`
	Line   int    `json:"line"`
	Column int    `json:"column"`
	Secret string `json:"secret"` // masked: the prefix only
	Status string `json:"status"`
	Kind   string `json:"kind,omitempty"`
	ID     string `json:"id,omitempty"`
	Name   string `json:"name,omitempty"`
}

// scanActionJSON is a credential --revoke removed or rotated.
type scanActionJSON struct {
	Action    string     `json:"action"` // "removed", "rotated" or "revoked"
	Kind      string     `json:"kind"`
	ID        string     `json:"id"`
	Name      string     `json:"name,omitempty"`
	Secret    string     `json:"secret,omitempty"` // the new secret, once
	RetiresAt *time.Time `json:"old_secret_retires_at,omitempty"`
}

// scanStats counts what a scan went through.
type scanStats struct {
	files, binary int
	unreadable    []string
}

func (a *app) runScan(paths []string, o scanOptions) error {
	if o.graceSet && !o.revoke {
		return usagef("--grace goes with --revoke: it rotates what --revoke would remove")
	}
	if o.grace < 0 {
		return usagef("--grace must not be negative")
	}
	stdin := slices.Contains(paths, "-")
	if stdin && len(paths) > 1 {
		return usagef("scan either stdin (-) or PATHs, not both")
	}
	if o.revoke && !o.yes && (stdin || !a.io.canPrompt()) {
		return usagef("--revoke asks before it changes the vault, and there is no terminal to ask on (or stdin is what is scanned): add --yes")
	}
	for _, p := range paths {
		if p == "-" {
			continue
		}
		if _, err := os.Lstat(p); err != nil {
			return usagef("cannot scan %s: %v", p, pathErr(err))
		}
	}
	var hits []scanHit
	add := func(file string, line, col int, secret string) {
		hits = append(hits, scanHit{file: file, line: line, col: col, secret: secret})
	}
	var st scanStats
	if stdin {
		if err := scanStream(a.io.In, func(line, col int, s string) { add("-", line, col, s) }); err != nil {
			return fmt.Errorf("read stdin: %w", err)
		}
		st.files++
	} else {
		for _, p := range paths {
			scanPath(p, &st, add)
		}
	}
	results, vaultErr := a.classify(hits)
	if vaultErr != nil && o.revoke && len(hits) > 0 {
		return fmt.Errorf("cannot revoke: %w", vaultErr)
	}
	if err := a.printHits(hits, results); err != nil {
		return err
	}
	live := liveCredentials(hits, results)
	var acted []scanActionJSON
	if o.revoke && len(live) > 0 {
		var err error
		if acted, err = a.revokeFound(live, o); err != nil {
			return err
		}
	}
	return a.scanVerdict(hits, results, st, vaultErr, o, acted)
}

// scanVerdict is the exit status: an error (exit 1) when live or
// unverified secrets were found or a file could not be read, saying so in
// one line; otherwise a short summary on stderr in text output.
func (a *app) scanVerdict(hits []scanHit, results map[string]scanResult, st scanStats, vaultErr error, o scanOptions, acted []scanActionJSON) error {
	live, unverified, other := 0, 0, 0
	liveFiles := map[string]bool{}
	for _, h := range hits {
		switch results[h.secret].status {
		case scanLive:
			live++
			liveFiles[h.file] = true
		case scanUnverified:
			unverified++
			liveFiles[h.file] = true
		default:
			other++
		}
	}
	var parts []string
	switch {
	case live > 0 && len(acted) > 0 && o.graceSet:
		parts = append(parts, fmt.Sprintf("found %s in %s; rotated %s (new secrets on stdout; the ones found stop working in %s): remove them from the files", plural(live, "live secret"), plural(len(liveFiles), "file"), plural(len(acted), "credential"), shortDuration(o.grace)))
	case live > 0 && len(acted) > 0:
		parts = append(parts, fmt.Sprintf("found %s in %s; removed %s: the files still hold them, now dead", plural(live, "live secret"), plural(len(liveFiles), "file"), plural(len(acted), "credential")))
	case live > 0:
		parts = append(parts, fmt.Sprintf("found %s in %s (listed on stdout): remove their credentials with `keymint scan --revoke`, or rotate them with --revoke --grace 24h", plural(live, "live secret"), plural(len(liveFiles), "file")))
	case unverified > 0:
		parts = append(parts, fmt.Sprintf("found %s that could not be checked, as the vault could not be opened (%v): treat them as live", plural(unverified, "secret"), vaultErr))
	}
	if n := len(st.unreadable); n > 0 {
		parts = append(parts, fmt.Sprintf("could not read %s (first: %s), so the scan is incomplete", plural(n, "file"), st.unreadable[0]))
	}
	if len(parts) > 0 {
		return errors.New(strings.Join(parts, "; "))
	}
	if !a.json() {
		fmt.Fprintf(a.io.Err, "no live secrets: scanned %s", plural(st.files, "file"))
		if st.binary > 0 {
			fmt.Fprintf(a.io.Err, " (skipped %s)", plural(st.binary, "binary file"))
		}
		if other > 0 {
			fmt.Fprintf(a.io.Err, "; %s not live in this vault", plural(other, "secret"))
		}
		fmt.Fprintln(a.io.Err)
	}
	return nil
}
