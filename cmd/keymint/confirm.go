package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// Confirmation of destructive commands (recipients rm, rekey, restore
// --force, scan --revoke, rm, rotate --grace 0), decided here once:
//
//   - with --yes, the command goes ahead unasked;
//   - on a terminal it asks, after saying what it is about to do, and
//     anything but yes cancels it (exit 1, nothing changed);
//   - with no terminal and no --yes it refuses before doing anything (exit
//     2), so a script never waits for an answer that will not come, nor
//     goes ahead unasked.

// errNotConfirmed is a destructive command the person at the terminal did
// not confirm.
var errNotConfirmed = errors.New("not confirmed; nothing was changed")

// needConfirmation refuses command, with no terminal to ask on, unless
// --yes confirmed it beforehand. Call it before any work, so that a refusal
// costs nothing.
func (a *app) needConfirmation(yes bool, command string) error {
	if yes || a.io.canPrompt() {
		return nil
	}
	return usagef("%s asks for confirmation, but there is no terminal to ask on: add --yes to confirm; nothing was changed", command)
}

// confirm asks question (ending in "?") on the terminal, unless yes; call
// needConfirmation first.
func (a *app) confirm(yes bool, question string) error {
	if yes {
		return nil
	}
	fmt.Fprintf(a.io.Err, "%s Type yes to confirm: ", question)
	answer, err := a.io.readLine()
	if err != nil {
		return err
	}
	if s := strings.ToLower(strings.TrimSpace(answer)); s != "yes" && s != "y" {
		return errNotConfirmed
	}
	return nil
}

// destructive makes cmd ask before it runs when ask reports it would
// destroy something (nil: always), with a --yes flag that answers
// beforehand; question says what it is about to do with args. The flags
// are parsed when RunE runs, so ask may read them.
func (a *app) destructive(cmd *cobra.Command, ask func() bool, question func(args []string) string) *cobra.Command {
	var yes bool
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	when := "It asks"
	if ask != nil {
		when = "With --grace 0 it asks"
	}
	long := cmd.Long
	if long == "" {
		long = cmd.Short + "."
	}
	cmd.Long = long + "\n\n" + when + " for confirmation on a terminal; --yes skips the question, and\nis required without a terminal."
	run := cmd.RunE
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if ask == nil || ask() {
			name := strings.TrimPrefix(c.CommandPath(), c.Root().Name()+" ")
			if err := a.needConfirmation(yes, name); err != nil {
				return err
			}
			if err := a.confirm(yes, question(args)); err != nil {
				return err
			}
		}
		return run(c, args)
	}
	return cmd
}

// deleteQuestion asks to delete the things of kind that refs name.
func deleteQuestion(kind string) func(refs []string) string {
	return func(refs []string) string {
		what := kind
		if len(refs) > 1 {
			what += "s"
		}
		return fmt.Sprintf("Delete %s %s?", what, strings.Join(refs, ", "))
	}
}
