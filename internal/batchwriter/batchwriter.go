// Package batchwriter gathers what many goroutines write into few writes
// to one underlying writer.
//
// keymint serve logs one line per request to stderr. Written one by one,
// each line is a write system call made while the request's response waits
// to be flushed; under load those calls were a tenth of the server's CPU.
// A [Writer] hands each line to one goroutine that writes whatever has
// accumulated since its last write in one call, and at most one call every
// [MinGap]: an idle server writes each line as it comes, within a goroutine
// wake-up, and a busy one writes many lines a call. (Without the gap the
// goroutine, woken by every line, kept up with them: under wrk its writes
// held one or two lines each, and the log took a tenth of /verify's CPU.)
//
// Nothing is dropped: when the underlying writer falls behind by more than
// a limit, Write waits for it. Lines keep their order, and each Write's
// bytes stay together.
package batchwriter

import (
	"io"
	"sync"
	"time"
)

// DefaultLimit is how many bytes may wait to be written before Write
// blocks.
const DefaultLimit = 1 << 20

// MinGap is the least time between two writes to the underlying writer:
// a line written within it of the last write waits, at most that long, to
// go out with the lines that follow it.
const MinGap = time.Millisecond

// Writer is an io.Writer that writes to an underlying writer from a
// goroutine of its own, in batches. Close writes what is left and stops
// the goroutine. It is safe for concurrent use.
type Writer struct {
	out   io.Writer
	limit int

	mu      sync.Mutex
	pending []byte     // written, not yet handed to out
	room    *sync.Cond // signalled when pending has been taken
	closed  bool
	err     error // the first error of out, returned by later Writes

	wake chan struct{} // has a value when pending may be non-empty
	done chan struct{} // closed when the goroutine has stopped
}

// New returns a Writer to out that lets up to limit bytes wait (at most
// DefaultLimit if limit is not positive), and starts its goroutine.
func New(out io.Writer, limit int) *Writer {
	if limit <= 0 {
		limit = DefaultLimit
	}
	w := &Writer{
		out:   out,
		limit: limit,
		wake:  make(chan struct{}, 1),
		done:  make(chan struct{}),
	}
	w.room = sync.NewCond(&w.mu)
	go w.run()
	return w
}

// Write queues p to be written, waiting while more than the limit is
// queued already. It returns the first error the underlying writer gave,
// if any (p is then not queued), and io.ErrClosedPipe after Close.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	for len(w.pending) >= w.limit && !w.closed && w.err == nil {
		w.room.Wait()
	}
	switch {
	case w.closed:
		w.mu.Unlock()
		return 0, io.ErrClosedPipe
	case w.err != nil:
		err := w.err
		w.mu.Unlock()
		return 0, err
	}
	w.pending = append(w.pending, p...)
	// Sent under the lock, so that it happens before Close closes wake.
	select {
	case w.wake <- struct{}{}:
	default: // already woken; the goroutine will take p with the rest
	}
	w.mu.Unlock()
	return len(p), nil
}

// run writes batches until Close.
func (w *Writer) run() {
	defer close(w.done)
	var spare []byte
	var last time.Time
	for range w.wake {
		if gap := time.Since(last); gap < MinGap {
			time.Sleep(MinGap - gap) // busy: let lines gather
		}
		last = time.Now()
		for {
			w.mu.Lock()
			batch := w.pending
			if len(batch) == 0 {
				w.mu.Unlock()
				break
			}
			// Writes go on into the other buffer while this one is out.
			w.pending = spare[:0]
			w.room.Broadcast()
			w.mu.Unlock()
			_, err := w.out.Write(batch)
			spare = batch
			if err != nil {
				w.mu.Lock()
				if w.err == nil {
					w.err = err
				}
				w.room.Broadcast()
				w.mu.Unlock()
			}
		}
	}
}

// Close writes everything queued, stops the goroutine and returns the first
// error of the underlying writer. Writes after Close fail. Close does not
// close the underlying writer.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		<-w.done
		return w.err
	}
	w.closed = true
	w.room.Broadcast()
	w.mu.Unlock()
	close(w.wake)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}
