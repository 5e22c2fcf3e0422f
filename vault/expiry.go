package vault

import (
	"bytes"
	"encoding/binary"
	"errors"
	"time"
)

// Expiry queues.
//
// Authorization codes and refresh tokens are written by the thousand and
// are useless once expired; a revocation is needed only until the token it
// revokes would have expired. Each is removed after its expiry by later
// writes, a few at a time, without any write scanning its bucket: every
// such record is entered in an expiry queue when it is written, and a write
// that adds to a queue first removes at most pruneBatch of its entries that
// are due, in at most pruneVisits ranges of the queue, once per
// transaction.
//
// The tree shards a bucket by a keyed hash, and a store range runs inside
// one shard (tree.go), so no single range can follow expiry across a whole
// bucket. An entry's shard key is therefore its queue and the minute it
// expires in (its slot): a slot is one range, ordered by expiry. A queue is
// read a slot at a time from its cursor, the oldest slot that may still
// hold entries. So that idle time (a night, a month) costs a step a day
// rather than a step a minute, each hour that holds entries has a marker,
// and an hour's markers are one range per day: the cursor skips unmarked
// hours and days at one range each.
//
// Every entry is in the cursor's slot or a later one, and its hour is
// marked: a record is entered at its own slot, or at the cursor's if that
// is later (one written already expired, or under a clock that went back),
// with its hour's marker; the cursor passes a slot only once the slot is
// empty and over, and drops an hour's marker when it leaves the hour.
//
// Keys, in the expiry bucket (the shard key is the first 10 bytes of an
// entry or marker):
//
//	entry:  queue, 'e', slot (8, big-endian unix minutes), expiry (8,
//	        big-endian unix seconds, rounded up), kind (1), ref (the
//	        record's key)
//	marker: queue, 'h', day (8, unix days), hour (8, unix hours)
//	cursor: queue, 'c' -> the cursor's slot
//
// Values are sealed like every other (an empty object, or the slot).
//
// The pruning of one write may find an entry whose record is gone (removed
// with its grant, say) or, for a revocation made again, no longer due: it
// drops the entry and removes the record only if the record itself is due.

// expiryQueue names a queue: revocations are kept apart from codes and
// refresh tokens, since removing a revocation changes a record servers
// cache (it advances the generation) and removing a code does not.
type expiryQueue byte

const (
	queueTokens      expiryQueue = 't' // authorization codes and refresh tokens
	queueRevocations expiryQueue = 'v'
)

// What an entry's ref names.
const (
	expiryCode       byte = 'c' // ref: HMAC of the code, in codes
	expiryRefresh    byte = 'r' // ref: HMAC of the refresh token, in refresh
	expiryRevocation byte = 'v' // ref: the jti, in revoked
)

const (
	// expirySlot is the width of a slot, in seconds. A slot is one shard,
	// which the tree hashes whole on every write to it: a minute of codes
	// at a thousand sign-ins a minute is a thousand records.
	expirySlot   = 60
	slotsPerHour = 3600 / expirySlot
	hoursPerDay  = 24
	// pruneBatch bounds the entries one write removes: each removal dirties
	// a shard or three (8 KiB tree nodes at commit), and steady use adds
	// one entry a write.
	pruneBatch = 8
	// pruneVisits bounds the ranges of the queue one write reads (a slot,
	// or a day's markers), so that a write after a long idle time catches
	// up a step at a time.
	pruneVisits = 64

	expiryShardLen = 1 + 1 + 8          // queue, 'e' or 'h', then the slot or day
	markerLen      = expiryShardLen + 8 // and a marker's hour
	expiryKindAt   = expiryShardLen + 8 // an entry's kind follows its expiry
	expiryRefAt    = expiryKindAt + 1   // and its ref the kind
	expiryEntryMin = expiryRefAt + 1    // an entry's shortest key
	noHour         = ^uint64(0)         // no hour known to be marked
)

// expirySecs is t in unix seconds, rounded up (so that an entry is never
// due before its record), and never before the epoch.
func expirySecs(t time.Time) uint64 {
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return uint64(max(s, 0))
}

func slotOf(secs uint64) uint64 { return secs / expirySlot }

func slotPrefix(q expiryQueue, slot uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{byte(q), 'e'}, slot)
}

func expiryKey(q expiryQueue, slot, secs uint64, kind byte, ref []byte) []byte {
	k := binary.BigEndian.AppendUint64(slotPrefix(q, slot), secs)
	return append(append(k, kind), ref...)
}

func dayPrefix(q expiryQueue, day uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{byte(q), 'h'}, day)
}

func markerKey(q expiryQueue, hour uint64) []byte {
	return binary.BigEndian.AppendUint64(dayPrefix(q, hour/hoursPerDay), hour)
}

func cursorKey(q expiryQueue) []byte { return []byte{byte(q), 'c'} }

// expiryShardKey is shardKey for the expiry bucket: an entry's queue and
// slot, a marker's queue and day, a cursor's whole key.
func expiryShardKey(key []byte) []byte {
	if len(key) >= markerLen && (key[1] == 'e' || key[1] == 'h') {
		return key[:expiryShardLen]
	}
	return key
}

// expiryCursor returns a queue's cursor; ok is false for a queue never used.
func (tx *Tx) expiryCursor(q expiryQueue) (slot uint64, ok bool, err error) {
	ok, err = tx.getJSON(bucketExpiry, cursorKey(q), &slot)
	return slot, ok, err
}

// expiryPut enters the record ref, of kind kind, expiring at at, in queue q.
func (tx *Tx) expiryPut(q expiryQueue, kind byte, ref []byte, at time.Time) error {
	cur, ok, err := tx.expiryCursor(q)
	if err != nil {
		return err
	}
	if !ok {
		cur = slotOf(expirySecs(tx.now))
		if err := tx.putJSON(bucketExpiry, cursorKey(q), cur); err != nil {
			return err
		}
	}
	secs := expirySecs(at)
	slot := max(slotOf(secs), cur)
	marker := markerKey(q, slot/slotsPerHour)
	marked, err := tx.exists(bucketExpiry, marker)
	if err != nil {
		return err
	}
	if !marked {
		if err := tx.putJSON(bucketExpiry, marker, struct{}{}); err != nil {
			return err
		}
	}
	return tx.putJSON(bucketExpiry, expiryKey(q, slot, secs, kind, ref), struct{}{})
}

// expiryDelete removes the entry of a record removed before its expiry. An
// entry that was put at the cursor's slot rather than its own is left to
// pruning, which drops it when it finds the record gone. The hour's marker
// stays until the cursor leaves the hour.
func (tx *Tx) expiryDelete(q expiryQueue, kind byte, ref []byte, at time.Time) error {
	secs := expirySecs(at)
	return tx.delete(bucketExpiry, expiryKey(q, slotOf(secs), secs, kind, ref))
}

// errStopRange ends a range early.
var errStopRange = errors.New("stop")

// pruneExpired removes up to pruneBatch due entries of queue q, and their
// records, reading at most pruneVisits ranges from the cursor, and moves
// the cursor past the slots it emptied and the hours it found unmarked.
// It does so once a transaction: the bound is per write, however many
// records the write adds.
func (tx *Tx) pruneExpired(q expiryQueue) error {
	if tx.pruned[q] {
		return nil
	}
	if tx.pruned == nil {
		tx.pruned = map[expiryQueue]bool{}
	}
	tx.pruned[q] = true
	cur, ok, err := tx.expiryCursor(q)
	if err != nil || !ok {
		return err
	}
	now := uint64(max(tx.now.Unix(), 0))
	nowSlot := slotOf(now)
	start, budget, marked := cur, pruneBatch, noHour
	for visits := 0; visits < pruneVisits && budget > 0 && cur <= nowSlot; visits++ {
		hour := cur / slotsPerHour
		if hour != marked {
			// Is the cursor's hour marked, or which is the next that is?
			next, found, err := tx.nextMarkedHour(q, hour)
			if err != nil {
				return err
			}
			if found && next == hour {
				marked = hour
				continue
			}
			to := (hour/hoursPerDay + 1) * hoursPerDay * slotsPerHour // the next day
			if found {
				to = next * slotsPerHour
			}
			if to = min(to, nowSlot); to == cur {
				break
			}
			cur = to
			continue
		}
		drained, n, err := tx.pruneSlot(q, cur, now, budget)
		if err != nil {
			return err
		}
		budget -= n
		if !drained || cur == nowSlot {
			break
		}
		if cur%slotsPerHour == slotsPerHour-1 {
			// Leaving the hour, whose every slot from the cursor on is
			// now empty, and before it was empty already.
			if err := tx.delete(bucketExpiry, markerKey(q, hour)); err != nil {
				return err
			}
		}
		cur++
	}
	if cur == start {
		return nil
	}
	return tx.putJSON(bucketExpiry, cursorKey(q), cur)
}

// nextMarkedHour finds the first marked hour from hour to the end of its
// day.
func (tx *Tx) nextMarkedHour(q expiryQueue, hour uint64) (next uint64, found bool, err error) {
	day := dayPrefix(q, hour/hoursPerDay)
	err = tx.rangeShard(bucketExpiry, markerKey(q, hour), prefixEnd(day), func(k, _ []byte) error {
		next, found = binary.BigEndian.Uint64(k[expiryShardLen:]), true
		return errStopRange
	})
	if errors.Is(err, errStopRange) {
		err = nil
	}
	return next, found, err
}

// pruneSlot removes up to budget entries of a slot that are due at now (in
// unix seconds), and reports whether it left the slot empty.
func (tx *Tx) pruneSlot(q expiryQueue, slot, now uint64, budget int) (drained bool, n int, err error) {
	var due [][]byte
	drained = true
	err = tx.rangeShard(bucketExpiry, slotPrefix(q, slot), slotPrefix(q, slot+1), func(k, _ []byte) error {
		if len(k) < expiryEntryMin || binary.BigEndian.Uint64(k[expiryShardLen:]) > now || len(due) == budget {
			drained = false
			return errStopRange
		}
		due = append(due, bytes.Clone(k))
		return nil
	})
	if err != nil && !errors.Is(err, errStopRange) {
		return false, 0, err
	}
	for _, k := range due {
		if err := tx.dropExpired(k); err != nil {
			return false, 0, err
		}
	}
	return drained, len(due), nil
}

// dropExpired removes a due entry, and its record if the record is due.
func (tx *Tx) dropExpired(key []byte) error {
	if err := tx.delete(bucketExpiry, key); err != nil {
		return err
	}
	ref := key[expiryRefAt:]
	switch key[expiryKindAt] {
	case expiryCode:
		var c AuthCode
		if ok, err := tx.getJSON(bucketCodes, ref, &c); err != nil || !ok || tx.now.Before(c.ExpiresAt) {
			return err
		}
		return tx.delete(bucketCodes, ref)
	case expiryRefresh:
		var rt RefreshToken
		if ok, err := tx.getJSON(bucketRefresh, ref, &rt); err != nil || !ok || tx.now.Before(rt.ExpiresAt) {
			return err
		}
		return tx.dropRefreshToken(ref, &rt)
	case expiryRevocation:
		var r Revocation
		if ok, err := tx.getJSON(bucketRevoked, ref, &r); err != nil || !ok || tx.now.Before(r.ExpiresAt) {
			return err
		}
		return tx.delete(bucketRevoked, ref)
	}
	return nil
}
