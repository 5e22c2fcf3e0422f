package server

import (
	"hash/maphash"
	"maps"
)

// layered is an immutable map from string keys, built so that a snapshot
// with a few entries changed shares almost everything with the one before:
// a large base map, never modified once built, and a small overlay of the
// entries set or removed since (a removal of a base entry is a tombstone).
// A lookup tries the overlay first, then the base.
//
// The overlay is split into overlayShards maps by a hash of the key, each
// copied on write, so that applying a change copies the shard array and the
// few shards it touches, not the whole overlay. When the overlay passes
// len(base)/8 entries (see maxOverlay) it is folded into a new base, a copy
// of the whole map made once per len(base)/8 changes. So a change costs the
// copy of a shard of at most about 64 entries and 8 entries' share of the
// folds: a constant, up to a base of 131,072 entries; past that the overlay
// is capped, and a change's share of the folds grows as len(base)/16,384.
//
// A nil *layered is an empty map. A layered is safe for concurrent readers;
// apply returns a new one and leaves the receiver as it was.
type layered[V any] struct {
	base   map[string]V
	shards *[overlayShards]map[string]slot[V] // nil while the overlay is empty
	// overlay counts the overlay's entries, tombstones included; live the
	// map's entries.
	overlay, live int
	// minOverlay is the least overlay size that is folded; 0 means
	// defaultMinOverlay. Tests make it small.
	minOverlay int
}

// slot is an overlay entry: a value, or a tombstone when !ok.
type slot[V any] struct {
	v  V
	ok bool
}

// edit sets key to val, or removes key when del.
type edit[V any] struct {
	key string
	val V
	del bool
}

const (
	overlayShards     = 256
	defaultMinOverlay = 1024
	maxShardOverlay   = 64
)

var overlaySeed = maphash.MakeSeed()

func shardIndex(key string) int {
	return int(maphash.String(overlaySeed, key) & (overlayShards - 1))
}

func shardIndexBytes(key []byte) int {
	return int(maphash.Bytes(overlaySeed, key) & (overlayShards - 1))
}

// newLayered returns a map whose base is m, which the caller must no longer
// modify.
func newLayered[V any](m map[string]V) *layered[V] {
	return &layered[V]{base: m, live: len(m)}
}

// get returns the value under key.
func (m *layered[V]) get(key string) (V, bool) {
	if m == nil {
		var zero V
		return zero, false
	}
	if m.shards != nil {
		if s, ok := m.shards[shardIndex(key)][key]; ok {
			return s.v, s.ok
		}
	}
	v, ok := m.base[key]
	return v, ok
}

// getBytes is get for a key held as bytes, without converting it to a
// string on the heap.
func (m *layered[V]) getBytes(key []byte) (V, bool) {
	if m == nil {
		var zero V
		return zero, false
	}
	if m.shards != nil {
		if s, ok := m.shards[shardIndexBytes(key)][string(key)]; ok {
			return s.v, s.ok
		}
	}
	v, ok := m.base[string(key)]
	return v, ok
}

// has reports whether key is in the map.
func (m *layered[V]) has(key string) bool {
	_, ok := m.get(key)
	return ok
}

// len returns the number of entries.
func (m *layered[V]) len() int {
	if m == nil {
		return 0
	}
	return m.live
}

// apply returns the map with edits applied in order (a later edit of a key
// wins over an earlier one). Its cost is that of copying the overlay shards
// the edits touch, and now and then of a fold.
func (m *layered[V]) apply(edits []edit[V]) *layered[V] {
	if m == nil {
		m = &layered[V]{}
	}
	if len(edits) == 0 {
		return m
	}
	next := *m
	shards := new([overlayShards]map[string]slot[V])
	if m.shards != nil {
		*shards = *m.shards
	}
	next.shards = shards
	var copied [overlayShards]bool
	for _, e := range edits {
		i := shardIndex(e.key)
		if !copied[i] {
			copied[i] = true
			shards[i] = cloneShard(shards[i])
		}
		sh := shards[i]
		old, inOverlay := sh[e.key]
		_, inBase := next.base[e.key]
		was := inBase
		if inOverlay {
			was = old.ok
		}
		switch {
		case e.del:
			if was {
				next.live--
			}
			if inBase {
				sh[e.key] = slot[V]{} // a tombstone hides the base entry
				if !inOverlay {
					next.overlay++
				}
			} else if inOverlay {
				delete(sh, e.key)
				next.overlay--
			}
		default:
			if !was {
				next.live++
			}
			sh[e.key] = slot[V]{v: e.val, ok: true}
			if !inOverlay {
				next.overlay++
			}
		}
	}
	if next.overlay > next.maxOverlay() {
		return next.fold()
	}
	return &next
}

// maxOverlay is the largest overlay kept unfolded: an eighth of the base,
// so that a fold (a copy of the base) comes once per len(base)/8 changes,
// but at least minOverlay, and at most maxShardOverlay entries a shard on
// average, so that the shard a change copies stays small in a huge map.
func (m *layered[V]) maxOverlay() int {
	least := defaultMinOverlay
	if m.minOverlay > 0 {
		least = m.minOverlay
	}
	return max(least, min(len(m.base)/8, maxShardOverlay*overlayShards))
}

func cloneShard[V any](sh map[string]slot[V]) map[string]slot[V] {
	if sh == nil {
		return map[string]slot[V]{}
	}
	return maps.Clone(sh)
}

// fold returns the map with its overlay merged into a new base.
func (m *layered[V]) fold() *layered[V] {
	base := maps.Clone(m.base)
	if base == nil {
		base = map[string]V{}
	}
	if m.shards != nil {
		for _, sh := range m.shards {
			for k, s := range sh {
				if s.ok {
					base[k] = s.v
				} else {
					delete(base, k)
				}
			}
		}
	}
	return &layered[V]{base: base, live: len(base), minOverlay: m.minOverlay}
}
