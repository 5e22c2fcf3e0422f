// Command keymint keeps API credentials in a local sealed vault and mints
// access tokens from them. See README.md for a tour.
package main

import (
	"fmt"
	"os"
)

func main() {
	os.Exit(hardenedRun(os.Args[1:], systemStreams(), os.Getenv))
}

// hardenedRun is [run] in a process whose memory cannot end up in a core
// dump (see hardenProcess). It hardens first, before anything reads a
// secret, and gives up if it cannot: setting the limit to 0 and clearing
// the dumpable flag never fail on Linux, so a failure means something is
// wrong around keymint, and a credential store should not go on then.
func hardenedRun(args []string, io *streams, getenv func(string) string) int {
	if err := hardenProcess(); err != nil {
		fmt.Fprintf(io.Err, "keymint: cannot disable core dumps: %s\n", oneLine(err.Error()))
		return exitFailure
	}
	return run(args, io, getenv)
}
