package vault

import (
	"bytes"
	"cmp"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"slices"
)

// The authenticated state.
//
// Sealing a record binds it to its bucket and key, but not to the moment it
// was written, nor to the set of records: on its own it cannot tell an
// older sealed value put back, or a record removed or copied in. So every
// bucket outside meta and audit is covered by a hash tree whose root is in
// the sealed head:
//
//   - A record lives in one of 65,536 shards of its bucket, chosen by a keyed
//     hash of its shard key (the record key, or for usage counters the
//     credential id, so that one credential's counters share a shard). The
//     store key is the 2-byte shard number followed by the record key, so a
//     shard is one range of the bucket.
//   - A shard's leaf digest is an HMAC, under a key derived from the data
//     key, over its records in order (key and sealed value, length-prefixed);
//     an empty shard's is zero.
//   - 256 leaves make a node; 256 node hashes make the bucket's root node;
//     the root's hash is in the head. Nodes are stored in the tree bucket,
//     in the clear (they hold only hashes); an all-zero node is not stored.
//
// A point read re-hashes its record's shard (a few records at any size),
// and checks one node and the root against the head: its cost does not grow
// with the vault until shards hold many records each (at a million records a
// bucket, about 15). A write re-hashes each shard it touched, after checking
// it as a read would (a write must never bless what someone else put there),
// and rewrites one node, the root and the head. Verifying a whole bucket
// hashes every record once.
//
// The head itself is sealed and carries a revision that every commit
// advances; that a file is not older than one already seen is checked
// against the state this machine remembers (see rollback.go).

const (
	shardBits  = 16
	nodeFanout = 256
	digestSize = sha256.Size
	nodeSize   = nodeFanout * digestSize
	bucketTree = "tree"
)

// shardOf returns the shard of a record by its shard key.
func (k *keys) shardOf(bucket string, shardKey []byte) uint16 {
	m := hmac.New(sha256.New, k.shardKey)
	m.Write([]byte(bucket))
	m.Write([]byte{0})
	m.Write(shardKey)
	return binary.BigEndian.Uint16(m.Sum(nil))
}

// storeKey is the store's key for a record: its shard, then its key.
func storeKey(shard uint16, key []byte) []byte {
	return append(binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(key)), shard), key...)
}

var zeroDigest = make([]byte, digestSize)

// leafHasher hashes the records of one shard, in order.
type leafHasher struct {
	h     hash.Hash
	empty bool
}

// resetLeaf starts a leaf on a hasher already keyed with the tree key:
// keying an HMAC costs more than hashing a shard's few records.
func resetLeaf(h hash.Hash, bucket string, shard uint16) *leafHasher {
	h.Reset()
	h.Write([]byte(bucket))
	h.Write([]byte{0})
	h.Write(binary.BigEndian.AppendUint16(nil, shard))
	return &leafHasher{h: h, empty: true}
}

func (l *leafHasher) add(key, value []byte) {
	var n [8]byte
	binary.BigEndian.PutUint32(n[:4], uint32(len(key)))
	binary.BigEndian.PutUint32(n[4:], uint32(len(value)))
	l.h.Write(n[:])
	l.h.Write(key)
	l.h.Write(value)
	l.empty = false
}

func (l *leafHasher) sum() []byte {
	if l.empty {
		return zeroDigest
	}
	return l.h.Sum(nil)
}

// nodeHash hashes a node or a root; zero for one that is all zero.
func nodeHash(label, bucket string, index int, node []byte) []byte {
	if isZero(node) {
		return zeroDigest
	}
	h := sha256.New()
	h.Write([]byte(label))
	h.Write([]byte{0})
	h.Write([]byte(bucket))
	h.Write([]byte{0, byte(index)})
	h.Write(node)
	return h.Sum(nil)
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func nodeKey(bucket string, index int) []byte {
	return append([]byte(bucket+"\x00n"), byte(index))
}

func rootKey(bucket string) []byte { return []byte(bucket + "\x00r") }

// TamperError reports a vault whose state fails authentication: a record
// altered, replayed from an older copy, removed or added, or a cut audit
// log. It wraps [ErrTampered].
type TamperError struct {
	Bucket string
	What   string
}

func (e *TamperError) Error() string {
	return fmt.Sprintf("%v: %s in bucket %s", ErrTampered, e.What, e.Bucket)
}

func (e *TamperError) Unwrap() error { return ErrTampered }

// auth is one transaction's view of the tree: nodes read and checked so
// far, the shards checked, and the shards written, whose leaves are
// recomputed at commit.
type auth struct {
	st    ReadTx
	keys  *keys
	roots map[string][]byte // head's root hash per bucket; updated at commit
	// rootNodes and nodes hold checked (or, once written, new) contents.
	rootNodes map[string][]byte
	nodes     map[nodeRef][]byte
	checked   map[shardRef]bool
	dirty     map[shardRef]bool
	// wholeBuckets are the buckets checked in full.
	wholeBuckets map[string]bool
	// leafMAC is keyed once and reset for each leaf, one at a time.
	leafMAC hash.Hash
}

type shardRef struct {
	bucket string
	shard  uint16
}

type nodeRef struct {
	bucket string
	index  int
}

func newAuth(st ReadTx, k *keys, roots map[string][]byte) *auth {
	return &auth{
		st: st, keys: k, roots: roots,
		rootNodes: map[string][]byte{}, nodes: map[nodeRef][]byte{},
		checked: map[shardRef]bool{}, dirty: map[shardRef]bool{}, wholeBuckets: map[string]bool{},
		leafMAC: hmac.New(sha256.New, k.treeKey),
	}
}

// rootNode returns a bucket's root node, checked against the head.
func (a *auth) rootNode(bucket string) ([]byte, error) {
	if n, ok := a.rootNodes[bucket]; ok {
		return n, nil
	}
	n, err := a.st.Get(bucketTree, rootKey(bucket))
	if err != nil {
		return nil, err
	}
	if n == nil {
		n = make([]byte, nodeSize)
	}
	want := a.roots[bucket]
	if want == nil {
		want = zeroDigest
	}
	if len(n) != nodeSize || !bytes.Equal(nodeHash("root", bucket, 0, n), want) {
		return nil, &TamperError{Bucket: bucket, What: "the root of the hash tree does not match the head"}
	}
	a.rootNodes[bucket] = n
	return n, nil
}

// node returns node index of a bucket, checked against its root.
func (a *auth) node(bucket string, index int) ([]byte, error) {
	ref := nodeRef{bucket, index}
	if n, ok := a.nodes[ref]; ok {
		return n, nil
	}
	root, err := a.rootNode(bucket)
	if err != nil {
		return nil, err
	}
	want := root[index*digestSize : (index+1)*digestSize]
	var n []byte
	if !isZero(want) {
		if n, err = a.st.Get(bucketTree, nodeKey(bucket, index)); err != nil {
			return nil, err
		}
	}
	if n == nil {
		n = make([]byte, nodeSize)
	}
	if len(n) != nodeSize || !bytes.Equal(nodeHash("node", bucket, index, n), want) {
		return nil, &TamperError{Bucket: bucket, What: fmt.Sprintf("node %d of the hash tree does not match its root", index)}
	}
	a.nodes[ref] = n
	return n, nil
}

// leaf recomputes a shard's digest from the store.
func (a *auth) leaf(bucket string, shard uint16) ([]byte, error) {
	l := resetLeaf(a.leafMAC, bucket, shard)
	prefix := binary.BigEndian.AppendUint16(nil, shard)
	err := a.st.Range(bucket, prefix, prefixEnd(prefix), func(k, v []byte) error {
		l.add(k, v)
		return nil
	})
	return l.sum(), err
}

// checkShard checks that a shard holds what the tree says it holds. A shard
// written in this transaction was checked before its first write.
func (a *auth) checkShard(bucket string, shard uint16) error {
	ref := shardRef{bucket, shard}
	if a.checked[ref] || a.wholeBuckets[bucket] {
		return nil
	}
	leaf, err := a.leaf(bucket, shard)
	if err != nil {
		return err
	}
	n, err := a.node(bucket, int(shard)/nodeFanout)
	if err != nil {
		return err
	}
	i := int(shard) % nodeFanout
	if !bytes.Equal(n[i*digestSize:(i+1)*digestSize], leaf) {
		return &TamperError{Bucket: bucket, What: fmt.Sprintf("shard %d holds records the vault did not write (a record replayed, removed, added or altered)", shard)}
	}
	a.checked[ref] = true
	return nil
}

// checkBucket checks every shard of a bucket in one pass over it.
func (a *auth) checkBucket(bucket string) error {
	if a.wholeBuckets[bucket] {
		return nil
	}
	leaves := map[uint16][]byte{}
	var cur *leafHasher
	var curShard uint16
	err := a.st.Range(bucket, nil, nil, func(k, v []byte) error {
		if len(k) < 2 {
			return &TamperError{Bucket: bucket, What: "a key too short to name a shard"}
		}
		s := binary.BigEndian.Uint16(k)
		if cur == nil || s != curShard {
			if cur != nil {
				leaves[curShard] = cur.sum()
			}
			cur, curShard = resetLeaf(a.leafMAC, bucket, s), s
		}
		cur.add(k, v)
		return nil
	})
	if err != nil {
		return err
	}
	if cur != nil {
		leaves[curShard] = cur.sum()
	}
	root, err := a.rootNode(bucket)
	if err != nil {
		return err
	}
	withLeaves := map[int]bool{}
	for s := range leaves {
		withLeaves[int(s)/nodeFanout] = true
	}
	for i := range nodeFanout {
		if !withLeaves[i] && isZero(root[i*digestSize:(i+1)*digestSize]) {
			continue
		}
		n, err := a.node(bucket, i)
		if err != nil {
			return err
		}
		for j := range nodeFanout {
			s := uint16(i*nodeFanout + j)
			if a.dirty[shardRef{bucket, s}] {
				continue // checked before this transaction wrote to it
			}
			got, ok := leaves[s]
			if !ok {
				got = zeroDigest
			}
			if !bytes.Equal(n[j*digestSize:(j+1)*digestSize], got) {
				return &TamperError{Bucket: bucket, What: fmt.Sprintf("shard %d holds records the vault did not write (a record replayed, removed, added or altered)", s)}
			}
		}
	}
	a.wholeBuckets[bucket] = true
	return nil
}

// willWrite checks a shard before its first write in this transaction and
// marks it for the commit.
func (a *auth) willWrite(bucket string, shard uint16) error {
	if err := a.checkShard(bucket, shard); err != nil {
		return err
	}
	a.dirty[shardRef{bucket, shard}] = true
	return nil
}

// commit recomputes the leaves of the shards written, writes the nodes and
// roots above them, and updates roots (the head's copy).
func (a *auth) commit(w WriteTx) error {
	refs := make([]shardRef, 0, len(a.dirty))
	for r := range a.dirty {
		refs = append(refs, r)
	}
	slices.SortFunc(refs, func(x, y shardRef) int {
		return cmp.Or(cmp.Compare(x.bucket, y.bucket), cmp.Compare(x.shard, y.shard))
	})
	dirtyNodes := map[nodeRef]bool{}
	for _, r := range refs {
		leaf, err := a.leaf(r.bucket, r.shard)
		if err != nil {
			return err
		}
		ref := nodeRef{r.bucket, int(r.shard) / nodeFanout}
		n, err := a.node(ref.bucket, ref.index)
		if err != nil {
			return err
		}
		n = bytes.Clone(n)
		i := int(r.shard) % nodeFanout
		copy(n[i*digestSize:], leaf)
		a.nodes[ref] = n
		dirtyNodes[ref] = true
	}
	dirtyRoots := map[string]bool{}
	for ref := range dirtyNodes {
		n := a.nodes[ref]
		if isZero(n) {
			if err := w.Delete(bucketTree, nodeKey(ref.bucket, ref.index)); err != nil {
				return err
			}
		} else if err := w.Put(bucketTree, nodeKey(ref.bucket, ref.index), n); err != nil {
			return err
		}
		root, err := a.rootNode(ref.bucket)
		if err != nil {
			return err
		}
		root = bytes.Clone(root)
		copy(root[ref.index*digestSize:], nodeHash("node", ref.bucket, ref.index, n))
		a.rootNodes[ref.bucket] = root
		dirtyRoots[ref.bucket] = true
	}
	for bucket := range dirtyRoots {
		root := a.rootNodes[bucket]
		if isZero(root) {
			if err := w.Delete(bucketTree, rootKey(bucket)); err != nil {
				return err
			}
			delete(a.roots, bucket)
			continue
		}
		if err := w.Put(bucketTree, rootKey(bucket), root); err != nil {
			return err
		}
		a.roots[bucket] = nodeHash("root", bucket, 0, root)
	}
	a.dirty = map[shardRef]bool{}
	return nil
}
