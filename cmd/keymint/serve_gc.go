package main

import (
	"context"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// serve's garbage collector.
//
// serve's live heap is small (the snapshot of the vault: a few MiB for
// thousands of credentials) while every request allocates some 20 KiB, most
// of it signing a token. With Go's default GOGC=100 the collector then runs
// whenever the heap has doubled from that small live heap, tens of times a
// second under load: in a CPU profile of /token under wrk its mark workers
// alone take 6% of the CPU, besides what allocations pay to help it.
// serve therefore keeps a floor
// under the heap the collector lets grow: at least serveMinHeap, as
// GOGC = serveMinHeap / live heap; at least the default (GOGC=100) once the
// live heap is that large, so a big vault costs no more than twice its
// live heap, as by default. The trade is at most serveMinHeap of memory for
// 10-20% more /token throughput (BENCHMARKS.md). A GOGC or GOMEMLIMIT set
// in the environment is the operator's choice and is left alone.

// serveMinHeap is the heap the collector lets grow to before collecting,
// at least.
const serveMinHeap = 64 << 20

// gcRetune is how often the GC percent follows the live heap, which grows
// with the vault.
const gcRetune = time.Minute

// goMinHeap is the runtime's least heap goal at GOGC=100, which it scales
// with GOGC: the goal is never below goMinHeap * GOGC / 100.
const goMinHeap = 4 << 20

// gcPercentFor returns the GC percent that makes the collector's heap goal
// serveMinHeap for a live heap of live bytes and roots (stacks and
// globals) of roots bytes, and never less than Go's default. The goal is
// live + (live + roots) * GOGC / 100 (the pacer counts the roots), but at
// least goMinHeap * GOGC / 100, which bounds GOGC for a tiny live heap.
func gcPercentFor(live, roots uint64) int {
	if live+roots == 0 || live >= serveMinHeap {
		return 100
	}
	pct := min((serveMinHeap-live)*100/(live+roots), serveMinHeap*100/goMinHeap)
	return int(max(pct, 100))
}

// tuneGC keeps serve's GC percent at gcPercentFor the live heap until ctx
// ends, unless the environment sets GOGC or GOMEMLIMIT.
func tuneGC(ctx context.Context, getenv func(string) string) {
	if getenv("GOGC") != "" || getenv("GOMEMLIMIT") != "" {
		return
	}
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"}}
	retune := func() {
		metrics.Read(sample)
		var v [3]uint64
		for i, s := range sample {
			if s.Value.Kind() != metrics.KindUint64 {
				return // not reported by this runtime: keep the default
			}
			v[i] = s.Value.Uint64()
		}
		debug.SetGCPercent(gcPercentFor(v[0], v[1]+v[2]))
	}
	runtime.GC() // the live heap after loading the vault, measured
	retune()
	go func() {
		t := time.NewTicker(gcRetune)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				retune()
			}
		}
	}()
}
