package main

import "testing"

func TestGCPercentFor(t *testing.T) {
	for _, c := range []struct {
		live uint64
		want int
	}{
		{0, 100},                        // nothing measured yet: Go's default
		{4 << 20, 1600},                 // a small vault: the goal is 64 MiB
		{serveMinHeap / 2, 200},         //
		{serveMinHeap, 100},             // from there on, Go's default
		{10 * serveMinHeap, 100},        // never less than the default
		{1 << 10, 100_000},              // bounded
		{serveMinHeap*100/150 + 1, 149}, // rounds down
	} {
		if got := gcPercentFor(c.live); got != c.want {
			t.Errorf("gcPercentFor(%d) = %d, want %d", c.live, got, c.want)
		}
	}
}
