package browsertest

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
	"time"
)

// awaitGone waits until no process runs with profile as its user data
// directory (Chromium passes --user-data-dir to every child: renderers,
// zygote, network service), for up to limit. It returns the ones still
// there then, after killing them. Where /proc does not exist it has
// nothing to look at and returns nil.
func awaitGone(profile string, limit time.Duration) []int {
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		left := processesUsing(profile)
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			for _, pid := range left {
				syscall.Kill(pid, syscall.SIGKILL)
			}
			return left
		}
		<-tick.C
	}
}

// processesUsing lists the processes whose command line has
// --user-data-dir=profile.
func processesUsing(profile string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	want := []byte("--user-data-dir=" + profile)
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue // gone meanwhile, or not ours to read
		}
		for arg := range bytes.SplitSeq(cmdline, []byte{0}) {
			if bytes.Equal(arg, want) {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}
