package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Set by the release build's ldflags; see .goreleaser.yaml.
var (
	version = ""
	commit  = ""
	date    = ""
)

// buildVersion reports the ldflags version, or else what the Go toolchain
// recorded (a module version for `go install`, a VCS revision for a checkout).
func buildVersion() (ver, rev, when string) {
	ver, rev, when = version, commit, date
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return orDefault(ver, "devel"), rev, when
	}
	if ver == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
		ver = info.Main.Version
	}
	for _, s := range info.Settings {
		switch {
		case s.Key == "vcs.revision" && rev == "":
			rev = s.Value
		case s.Key == "vcs.time" && when == "":
			when = s.Value
		}
	}
	return orDefault(ver, "devel"), rev, when
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func newVersionCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print keymint's version",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			return a.runVersion()
		},
	}
}

func (a *app) runVersion() error {
	ver, rev, when := buildVersion()
	if a.json() {
		return a.writeJSON(map[string]string{"version": ver, "commit": rev, "date": when, "go": runtime.Version()})
	}
	fmt.Fprintf(a.io.Out, "keymint %s", ver)
	if rev != "" {
		fmt.Fprintf(a.io.Out, " (%s", rev[:min(12, len(rev))])
		if when != "" {
			fmt.Fprintf(a.io.Out, ", %s", when)
		}
		fmt.Fprint(a.io.Out, ")")
	}
	fmt.Fprintf(a.io.Out, " %s\n", runtime.Version())
	return nil
}
