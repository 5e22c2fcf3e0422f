package server

import (
	"crypto/rand"
	"fmt"
	"maps"
	mrand "math/rand/v2"
	"testing"
	"time"

	"github.com/keymint/keymint/vault"
)

// checkLayered compares m with model, over every key in keys, and checks
// the overlay's bound.
func checkLayered(t *testing.T, m *layered[int], model map[string]int, keys []string) {
	t.Helper()
	for _, k := range keys {
		want, wantOK := model[k]
		got, ok := m.get(k)
		if ok != wantOK || got != want {
			t.Fatalf("get(%q) = %d, %v; want %d, %v", k, got, ok, want, wantOK)
		}
		if got, ok := m.getBytes([]byte(k)); ok != wantOK || got != want {
			t.Fatalf("getBytes(%q) = %d, %v; want %d, %v", k, got, ok, want, wantOK)
		}
	}
	if m.len() != len(model) {
		t.Fatalf("len = %d, want %d", m.len(), len(model))
	}
	if m.overlay > m.maxOverlay() {
		t.Fatalf("overlay of %d entries over a base of %d was not folded", m.overlay, len(m.base))
	}
	n := 0
	if m.shards != nil {
		for _, sh := range m.shards {
			n += len(sh)
		}
	}
	if n != m.overlay {
		t.Fatalf("overlay counted %d, holds %d", m.overlay, n)
	}
}

// TestLayeredModel applies random edits to layered maps and to plain maps
// alike, and checks that every version, old ones included, still answers
// as its plain map does: edits and folds never change a published map.
func TestLayeredModel(t *testing.T) {
	for _, minOverlay := range []int{1, 4, 64, 0} {
		for _, universe := range []int{10, 300} {
			t.Run(fmt.Sprintf("fold at %d, %d keys", minOverlay, universe), func(t *testing.T) {
				rng := mrand.New(mrand.NewPCG(uint64(minOverlay), uint64(universe)))
				keys := make([]string, universe)
				for i := range keys {
					keys[i] = fmt.Sprintf("k%d", i)
				}
				// A base to start from, of half the keys.
				model := map[string]int{}
				for _, k := range keys[:universe/2] {
					model[k] = rng.IntN(1000)
				}
				m := newLayered(maps.Clone(model))
				m.minOverlay = minOverlay
				type version struct {
					m     *layered[int]
					model map[string]int
				}
				var history []version
				folds := 0
				for step := range 1500 {
					edits := make([]edit[int], rng.IntN(12))
					for i := range edits {
						k := keys[rng.IntN(universe)]
						if rng.IntN(3) == 0 {
							edits[i] = edit[int]{key: k, del: true}
							delete(model, k)
						} else {
							v := rng.IntN(1000)
							edits[i] = edit[int]{key: k, val: v}
							model[k] = v
						}
					}
					next := m.apply(edits)
					if next.shards == nil && len(edits) > 0 {
						folds++
					}
					m = next
					checkLayered(t, m, model, keys)
					if step%25 == 0 {
						history = append(history, version{m, maps.Clone(model)})
					}
				}
				for _, v := range history {
					checkLayered(t, v.m, v.model, keys)
				}
				if minOverlay > 0 && minOverlay < 64 && folds == 0 {
					t.Error("never folded")
				}
			})
		}
	}
}

// TestLayeredNil: a nil map is empty, and edits make a map of it.
func TestLayeredNil(t *testing.T) {
	var m *layered[int]
	if _, ok := m.get("a"); ok || m.len() != 0 || m.has("a") {
		t.Fatal("nil map is not empty")
	}
	m2 := m.apply([]edit[int]{{key: "a", val: 1}, {key: "b", del: true}})
	if v, ok := m2.get("a"); !ok || v != 1 || m2.len() != 1 {
		t.Fatalf("get = %d, %v; len %d", v, ok, m2.len())
	}
}

// TestApplyKeyChangesModel changes random API keys (created, rotated with
// and without a grace, rescoped, removed) through applyChanges on a
// snapshot whose maps fold often, and checks every secret ever made against
// a model: a removed key's secrets and a replaced secret stop resolving, a
// kept one resolves to the key's new record.
func TestApplyKeyChangesModel(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(1, 2))
	newMAC := func() []byte {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		return b
	}
	// The model: each key's secrets (MACs), and its scope, as a version.
	type modelKey struct {
		macs    [][]byte
		version int
	}
	model := map[string]*modelKey{}
	var allMACs [][]byte
	var ids []string
	newKey := func() *vault.Key {
		id := fmt.Sprintf("key_%016d", len(ids))
		ids = append(ids, id)
		mac := newMAC()
		allMACs = append(allMACs, mac)
		model[id] = &modelKey{macs: [][]byte{mac}}
		return recordOf(id, model[id].macs, 0)
	}

	var initial []*vault.Key
	for range 40 {
		initial = append(initial, newKey())
	}
	snap := (&Server{}).buildFull(&delta{full: true, apiKeys: initial})
	for _, minOverlay := range []*int{&snap.apiKeys.minOverlay, &snap.keysByID.minOverlay} {
		*minOverlay = 8
	}

	for step := range 2000 {
		var d delta
		for range 1 + rng.IntN(4) {
			switch op := rng.IntN(10); {
			case op < 3 || len(model) == 0: // create
				k := newKey()
				d.keyChanges = append(d.keyChanges, keyChange{id: k.ID, key: k})
			default:
				id := ids[rng.IntN(len(ids))]
				mk, ok := model[id]
				switch {
				case !ok: // a change to a key already gone: still gone
					d.keyChanges = append(d.keyChanges, keyChange{id: id})
				case op < 5: // removed
					delete(model, id)
					d.keyChanges = append(d.keyChanges, keyChange{id: id})
				case op < 8: // rotated, keeping the last secret (a grace) or not
					mac := newMAC()
					allMACs = append(allMACs, mac)
					if op == 5 {
						mk.macs = [][]byte{mac}
					} else {
						mk.macs = [][]byte{mk.macs[len(mk.macs)-1], mac}
					}
					d.keyChanges = append(d.keyChanges, keyChange{id: id, key: recordOf(id, mk.macs, mk.version)})
				default: // rescoped
					mk.version++
					d.keyChanges = append(d.keyChanges, keyChange{id: id, key: recordOf(id, mk.macs, mk.version)})
				}
			}
		}
		// One reload holds each key once, in its last state.
		d.keyChanges = lastPerID(d.keyChanges)
		applyChanges(&snap, &d)

		owner := map[string]string{}
		for id, mk := range model {
			for _, mac := range mk.macs {
				owner[string(mac)] = id
			}
		}
		for _, mac := range allMACs {
			vk, ok := snap.apiKeys.get(string(mac))
			id, want := owner[string(mac)]
			switch {
			case ok != want:
				t.Fatalf("step %d: secret of %s resolves: %v, want %v", step, id, ok, want)
			case ok && (vk.key.ID != id || vk.key.Scopes[0] != fmt.Sprint("v", model[id].version)):
				t.Fatalf("step %d: secret of %s resolves to %s %v", step, id, vk.key.ID, vk.key.Scopes)
			}
		}
		if snap.keysByID.len() != len(model) || snap.apiKeys.len() != len(owner) {
			t.Fatalf("step %d: %d keys and %d secrets served, want %d and %d", step, snap.keysByID.len(), snap.apiKeys.len(), len(model), len(owner))
		}
	}
}

func recordOf(id string, macs [][]byte, version int) *vault.Key {
	k := &vault.Key{Credential: vault.Credential{ID: id, Name: "n" + id, Scopes: []string{fmt.Sprint("v", version)}}}
	for _, mac := range macs {
		k.Secrets = append(k.Secrets, vault.SecretHash{MAC: mac})
	}
	return k
}

// lastPerID keeps the last change of each key, in order of first change.
func lastPerID(changes []keyChange) []keyChange {
	last := map[string]keyChange{}
	var order []string
	for _, c := range changes {
		if _, ok := last[c.id]; !ok {
			order = append(order, c.id)
		}
		last[c.id] = c
	}
	out := make([]keyChange, 0, len(order))
	for _, id := range order {
		out = append(out, last[id])
	}
	return out
}

// BenchmarkSnapshotOneChange is the in-memory half of a reload of one
// changed API key, without the vault: the next snapshot made from a
// snapshot of n keys, each with one secret. Its cost should not grow with
// n (folds, a copy of the map once per n/8 changes, included).
func BenchmarkSnapshotOneChange(b *testing.B) {
	for _, n := range []int{10, 10_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			keys := make([]*vault.Key, n)
			for i := range keys {
				mac := make([]byte, 32)
				_, _ = rand.Read(mac)
				keys[i] = recordOf(fmt.Sprintf("key_%016d", i), [][]byte{mac}, 0)
			}
			s := &Server{}
			snap := s.buildFull(&delta{full: true, apiKeys: keys})
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				k := keys[i%n]
				// A rotation: a new secret, the old one kept for a grace.
				mac := make([]byte, 32)
				_, _ = rand.Read(mac)
				next := recordOf(k.ID, [][]byte{k.Secrets[len(k.Secrets)-1].MAC, mac}, i)
				d := &delta{generation: uint64(i + 1), changed: 1, keyChanges: []keyChange{{id: k.ID, key: next}}}
				built, err := s.build(&snap, d, time.Date(2026, 11, 5, 10, 0, 0, 0, time.UTC))
				if err != nil {
					b.Fatal(err)
				}
				snap = *built
				keys[i%n] = next
			}
		})
	}
}
