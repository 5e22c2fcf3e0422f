package main

import "testing"

func TestGCPercentFor(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		live, roots uint64
		want        int
	}{
		{0, 0, 100},                 // nothing measured yet: Go's default
		{4 * mib, 0, 1500},          // a small vault: the goal is 64 MiB
		{3 * mib, 2 * mib, 1220},    // the roots count towards the goal too
		{serveMinHeap / 4, 0, 300},  //
		{serveMinHeap / 2, 0, 100},  // from a goal of twice live, Go's default
		{serveMinHeap, 0, 100},      //
		{10 * serveMinHeap, 0, 100}, // never less than the default
		{1 << 20, 1 << 18, 1600},    // the runtime's least goal, scaled, is the floor
		{13 * mib, 0, 392},          // rounds down
	} {
		got := gcPercentFor(c.live, c.roots)
		if got != c.want {
			t.Errorf("gcPercentFor(%d, %d) = %d, want %d", c.live, c.roots, got, c.want)
		}
		// The goal it gives is the floor, or Go's default above it.
		goal := max(c.live+(c.live+c.roots)*uint64(got)/100, goMinHeap*uint64(got)/100)
		if c.live+c.roots > 0 && got > 100 && (goal > serveMinHeap || goal < serveMinHeap-(c.live+c.roots)/100-1) {
			t.Errorf("gcPercentFor(%d, %d) = %d: goal %d, want about %d", c.live, c.roots, got, goal, serveMinHeap)
		}
	}
}
