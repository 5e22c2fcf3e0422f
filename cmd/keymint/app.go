package main

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// Exit codes: 1 when an operation failed, 2 when the command line was wrong.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// usageError marks an error in how keymint was called; it exits 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// app is what every command shares: streams, environment, clock and the
// decoded configuration. It is built per run, so tests can run many in one
// process.
type app struct {
	io     *streams
	getenv func(string) string
	// now is the clock every command reads the time from, and the vault's
	// and the server's (their Options.Now): time.Now, except in tests,
	// which run an app with a clock they move (see [app.run]), so that
	// nothing waits for time to pass. newRootCmd makes nil time.Now.
	now func() time.Time
	cfg config
	// command is the command line's command, without its arguments (which
	// may name secrets): what the audit log says made a change.
	command string
	// atExit runs when the command ends: closing what it opened, such as
	// a connection to etcd.
	atExit []func() error
}

func run(args []string, io *streams, getenv func(string) string) int {
	return (&app{io: io, getenv: getenv, now: time.Now}).run(args)
}

// run runs one keymint command line with a's streams, environment and
// clock, and returns its exit code.
func (a *app) run(args []string) int {
	io := a.io
	root := newRootCmd(a)
	root.SetArgs(args)
	root.SetIn(io.In)
	// Only cobra writes to these (help, usage, completions); keymint's
	// commands write to a.io. A secret given as an argument is masked.
	cobraOut, cobraErr := newMaskedWriter(io.Out), newMaskedWriter(io.Err)
	root.SetOut(cobraOut)
	root.SetErr(cobraErr)
	err := root.Execute()
	for _, f := range a.atExit {
		_ = f() // closing a connection the command is done with
	}
	a.atExit = nil
	cobraOut.Flush()
	cobraErr.Flush()
	if err == nil {
		return exitOK
	}
	code := exitFailure
	var ue usageError
	if errors.As(err, &ue) {
		code = exitUsage
	}
	msg := maskSecrets(oneLine(err.Error()))
	if a.jsonErrors(root) {
		writeJSONError(io.Err, msg, code)
	} else {
		fmt.Fprintf(io.Err, "keymint: %s\n", msg)
	}
	return code
}

// oneLine keeps an error message to the one line the CLI promises: its
// lines, trimmed and without the empty ones, joined by "; ".
func oneLine(s string) string {
	var parts []string
	for line := range strings.Lines(s) {
		if line = strings.Join(strings.Fields(line), " "); line != "" {
			parts = append(parts, line)
		}
	}
	return strings.Join(parts, "; ")
}

func newRootCmd(a *app) *cobra.Command {
	if a.now == nil {
		a.now = time.Now
	}
	root := &cobra.Command{
		Use:   "keymint",
		Short: "Keep API credentials in a sealed local vault and mint access tokens from them",
		Long: `keymint keeps API keys, OAuth 2.0 clients and JWT signing keys in a local
vault file (bbolt, sealed with age) and mints access tokens from it.

Settings come from flags, then KEYMINT_* environment variables, then the
config file, then defaults. Secrets are never taken as arguments: keymint
reads them from files, the environment, stdin or a no-echo prompt.

Exit codes: 0 success, 1 the operation failed, 2 bad usage. An error is one
line on stderr, "keymint: " and the message; with -o json it is one JSON
object on one line instead: {"error": "<message>", "exit": <code>}.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			a.command = cmd.CommandPath() // for the audit log: "keymint key rm"
			return a.loadConfig(cmd)
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	// An unknown command is keymint's own usage error, not cobra's untyped
	// one: exit codes never depend on the text of another library's errors.
	root.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		hint := ""
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			hint = fmt.Sprintf("; did you mean %q?", s[0])
		}
		return usagef("unknown command %q for %q%s; see `keymint --help`", args[0], cmd.CommandPath(), hint)
	}
	// Runnable, so that cobra calls Args rather than answering an unknown
	// command itself; with no command, the help.
	root.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	addGlobalFlags(root.PersistentFlags())
	root.AddCommand(
		newInitCmd(a),
		newKeyCmd(a),
		newClientCmd(a),
		newUserCmd(a),
		newPermissionGroupCmd(a),
		newGrantCmd(a),
		newTokenCmd(a),
		newUsageCmd(a),
		newSigningKeyCmd(a),
		newVaultCmd(a),
		newAgentCmd(a),
		newAuditCmd(a),
		newScanCmd(a),
		newServeCmd(a),
		newVersionCmd(a),
		newCompletionCmd(a),
	)
	rejectUnknownSubcommands(root)
	root.SetHelpCommand(newHelpCmd(root))
	return root
}

// newHelpCmd is cobra's help command, except that an unknown topic is a
// usage error (exit 2) rather than a message and exit 0.
func newHelpCmd(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		RunE: func(_ *cobra.Command, args []string) error {
			target, rest, err := root.Find(args)
			if err == nil && target != nil && len(rest) == 0 {
				return target.Help()
			}
			if target == nil {
				target = root
			}
			hint := ""
			if len(rest) > 0 {
				if s := target.SuggestionsFor(rest[0]); len(s) > 0 {
					hint = fmt.Sprintf("; did you mean %q?", strings.TrimPrefix(target.CommandPath()+" "+s[0], root.Name()+" "))
				}
			}
			return usagef("unknown help topic %q%s; see `keymint --help`", strings.Join(args, " "), hint)
		},
	}
}

// rejectUnknownSubcommands makes a command group such as `keymint key` fail
// with a usage error on a mistyped subcommand: cobra would print the help and
// exit 0, so `keymint key lst` would seem to work in a script.
func rejectUnknownSubcommands(cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		rejectUnknownSubcommands(c)
	}
	cmd.SuggestionsMinimumDistance = 2
	if cmd.HasParent() && cmd.HasSubCommands() && !cmd.Runnable() {
		cmd.RunE = func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			hint := ""
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				hint = fmt.Sprintf("; did you mean %q?", s[0])
			}
			return usagef("unknown command %q for %q%s; see `%s --help`", args[0], cmd.CommandPath(), hint, cmd.CommandPath())
		}
	}
}

// actor names who makes a change, for the audit log.
func actor() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	return name + "@" + host
}

// requireArgs is cobra.MinimumNArgs with keymint's usage exit code.
func requireArgs(n int, what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) < n {
			return usagef("missing %s", what)
		}
		return nil
	}
}

// maxArgs is cobra.MaximumNArgs with keymint's usage exit code.
func maxArgs(n int, what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) > n {
			return usagef("expected at most %s, got %d arguments", what, len(args))
		}
		return nil
	}
}

// noArgs refuses arguments to a command that takes none. cobra.NoArgs
// would call a stray argument an "unknown command", which it is not.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("%s takes no arguments, got %q", strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" "), args[0])
	}
	return nil
}

// exactArgs is cobra.ExactArgs with a message that names what is expected.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("expected %s, got %d argument(s)", what, len(args))
		}
		return nil
	}
}
