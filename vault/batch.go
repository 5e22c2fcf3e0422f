package vault

import (
	"errors"
	"sync"
)

// Group commit.
//
// A server that redeems authorization codes and rotates refresh tokens
// writes the vault once per request, durably: each commit waits for the
// disk (two fdatasyncs), which caps one process at a few hundred such
// requests a second however many cores it has. Batch lets concurrent
// writers share one commit: while one batch commits, the calls that
// arrive wait, and the next batch runs them all in one transaction. An
// idle vault commits a lone call at once; a busy one commits many per
// disk wait.

// batcher queues the calls of Batch.
type batcher struct {
	mu      sync.Mutex
	pending []*batchCall
	running bool // a goroutine is draining pending
}

type batchCall struct {
	fn  func(*Tx) error
	err chan error
}

// Batch runs fn in a write transaction, as Update does, but may run it in
// one transaction with the functions of concurrent Batch calls, one after
// another, and so commit them together. fn may run more than once, as
// with Update: it must act only through tx and reset what it records of a
// run. A function that fails does not fail the others: the batch is
// undone and run again without it, and it runs on its own, so its error
// (or, on its own, its success) is its alone. A reuse that Update commits
// despite the error (a reused code or refresh token) commits with the
// calls before it in the batch.
func (v *Vault) Batch(fn func(*Tx) error) error {
	call := &batchCall{fn: fn, err: make(chan error, 1)}
	b := &v.batch
	b.mu.Lock()
	b.pending = append(b.pending, call)
	if !b.running {
		b.running = true
		go v.drainBatches()
	}
	b.mu.Unlock()
	return <-call.err
}

// drainBatches commits what is pending, batch after batch, until nothing
// is.
func (v *Vault) drainBatches() {
	b := &v.batch
	b.mu.Lock()
	for len(b.pending) > 0 {
		calls := b.pending
		b.pending = nil
		b.mu.Unlock()
		v.runBatch(calls)
		b.mu.Lock()
	}
	b.running = false
	b.mu.Unlock()
}

// maxBatch bounds the calls of one transaction, so that one slow batch
// does not hold the file's lock long.
const maxBatch = 256

// runBatch runs calls in as few transactions as their failures allow, and
// answers each.
func (v *Vault) runBatch(calls []*batchCall) {
	if len(calls) == 0 {
		return
	}
	for len(calls) > maxBatch {
		v.runBatch(calls[:maxBatch])
		calls = calls[maxBatch:]
	}
	if len(calls) == 1 {
		calls[0].err <- v.Update(calls[0].fn)
		return
	}
	failed, kept := -1, false
	var failure error
	err := v.Update(func(tx *Tx) error {
		failed, kept, failure = -1, false, nil
		for i, c := range calls {
			if err := c.fn(tx); err != nil {
				failed, kept, failure = i, tx.kept != nil, err
				return err
			}
		}
		return nil
	})
	switch {
	case err == nil:
		for _, c := range calls {
			c.err <- nil
		}
	case failed < 0 || !errors.Is(err, failure):
		// The commit itself failed: nothing of the batch is written.
		for _, c := range calls {
			c.err <- err
		}
	case kept:
		// Committed up to and with the failed call's reuse.
		for _, c := range calls[:failed] {
			c.err <- nil
		}
		calls[failed].err <- err
		v.runBatch(calls[failed+1:])
	default:
		// Undone: the failed call alone, the others again.
		calls[failed].err <- v.Update(calls[failed].fn)
		rest := append(calls[:failed:failed], calls[failed+1:]...)
		v.runBatch(rest)
	}
}
