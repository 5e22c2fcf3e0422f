package main

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// hardenProcess keeps keymint's memory, which holds the identity, client
// secrets and API keys, out of core dumps and away from other processes.
// A core limit of 0 stops a core file, but not a core_pattern that pipes
// to a handler such as systemd-coredump or apport: the kernel ignores the
// limit for those. Not dumpable stops those too, and keeps processes of the
// same user (not root) from attaching to keymint or reading its memory
// through /proc. The age plugins keymint starts inherit the core limit;
// the kernel resets the dumpable flag when they exec, as for any program.
func hardenProcess() error {
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{Cur: 0, Max: 0}); err != nil {
		return fmt.Errorf("set the core file size limit to 0: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("mark the process not dumpable: %w", err)
	}
	return nil
}
