//go:build !linux

package main

// hardenProcess does nothing outside Linux. macOS writes no core unless the
// core limit (0 by default) is raised and /cores is writable; Windows has
// no core limit, and its crash dumps are set system-wide (WER). Neither has
// Linux's PR_SET_DUMPABLE.
func hardenProcess() error { return nil }
