package batchwriter_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keymint/keymint/internal/batchwriter"
)

// lockedBuffer records the writes it gets.
type lockedBuffer struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.writes++
	return b.buf.Write(p)
}

// TestConcurrentLinesAllWrittenWhole has many goroutines write numbered
// lines at once: after Close every line is there once, whole, and each
// goroutine's lines are in the order it wrote them.
func TestConcurrentLinesAllWrittenWhole(t *testing.T) {
	const writers, lines = 16, 2000
	var out lockedBuffer
	w := batchwriter.New(&out, 4096)
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range lines {
				line := fmt.Sprintf("g=%02d i=%05d %s\n", g, i, strings.Repeat("x", i%50))
				if n, err := w.Write([]byte(line)); err != nil || n != len(line) {
					t.Errorf("Write = %d, %v", n, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	next := make([]int, writers)
	got := strings.Split(strings.TrimSuffix(out.buf.String(), "\n"), "\n")
	if len(got) != writers*lines {
		t.Fatalf("%d lines, want %d", len(got), writers*lines)
	}
	for _, line := range got {
		var g, i int
		var tail string
		if _, err := fmt.Sscanf(line, "g=%d i=%d %s", &g, &i, &tail); err != nil && i%50 != 0 {
			t.Fatalf("torn line %q: %v", line, err)
		}
		if i != next[g] || len(tail) != i%50 {
			t.Fatalf("line %q: want i=%d of g=%d with %d x", line, next[g], g, i%50)
		}
		next[g]++
	}
	t.Logf("%d lines in %d writes", len(got), out.writes)
}

// blockingWriter holds every write until release is closed.
type blockingWriter struct {
	started chan struct{}
	release chan struct{}
	lockedBuffer
}

func (b *blockingWriter) Write(p []byte) (int, error) {
	select {
	case b.started <- struct{}{}:
	default:
	}
	<-b.release
	return b.lockedBuffer.Write(p)
}

// TestWriteWaitsBeyondLimit: with the underlying writer stuck, writes queue
// up to the limit and then wait, losing nothing.
func TestWriteWaitsBeyondLimit(t *testing.T) {
	out := &blockingWriter{started: make(chan struct{}, 1), release: make(chan struct{})}
	w := batchwriter.New(out, 10)
	if _, err := w.Write([]byte("first\n")); err != nil {
		t.Fatal(err)
	}
	// The goroutine holds "first" and is stuck writing it; the next line
	// fills the queue.
	<-out.started
	if _, err := w.Write([]byte("0123456789\n")); err != nil {
		t.Fatal(err)
	}
	third := make(chan error)
	go func() {
		_, err := w.Write([]byte("third\n"))
		third <- err
	}()
	select {
	case err := <-third:
		t.Fatalf("Write beyond the limit returned (%v) while the writer was stuck", err)
	default:
	}
	close(out.release)
	if err := <-third; err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := out.buf.String(), "first\n0123456789\nthird\n"; got != want {
		t.Fatalf("wrote %q, want %q", got, want)
	}
}

type failingWriter struct{ err error }

func (f failingWriter) Write([]byte) (int, error) { return 0, f.err }

// TestErrorsReported: the underlying writer's error comes back from a later
// Write and from Close; a Write after Close fails.
func TestErrorsReported(t *testing.T) {
	boom := errors.New("boom")
	w := batchwriter.New(failingWriter{boom}, 0)
	if _, err := w.Write([]byte("a\n")); err != nil {
		t.Fatalf("first Write = %v, want it queued", err)
	}
	if err := w.Close(); !errors.Is(err, boom) {
		t.Fatalf("Close = %v, want %v", err, boom)
	}
	if _, err := w.Write([]byte("b\n")); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("Write after Close = %v, want %v", err, io.ErrClosedPipe)
	}
	if err := w.Close(); !errors.Is(err, boom) {
		t.Fatalf("second Close = %v, want %v", err, boom)
	}
}

// TestIdleWriteIsPrompt: a single line is written without waiting for more
// or for Close.
func TestIdleWriteIsPrompt(t *testing.T) {
	out := &blockingWriter{started: make(chan struct{}, 1), release: make(chan struct{})}
	close(out.release)
	w := batchwriter.New(out, 0)
	defer w.Close()
	if _, err := w.Write([]byte("alone\n")); err != nil {
		t.Fatal(err)
	}
	<-out.started // reached the underlying writer before Close
}

func BenchmarkWrite(b *testing.B) {
	line := []byte(`time=2026-12-01T03:02:38.782Z level=INFO msg=request method=GET path="GET /verify" status=200 duration=2.5ms remote=127.0.0.1 key_id=key_SXTKp6svLD9hAZY6` + "\n")
	w := batchwriter.New(io.Discard, 0)
	defer w.Close()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_, _ = w.Write(line)
		}
	})
}

// TestBusyWritesAreBatched: lines from many goroutines, each writing one
// now and then as requests end (paced here by a short sleep, which leaves
// the writing goroutine time to keep up line by line), reach the underlying
// writer in few writes (at most one per MinGap), not one or two lines a
// write.
func TestBusyWritesAreBatched(t *testing.T) {
	const writers, lines = 16, 200
	var out lockedBuffer
	w := batchwriter.New(&out, 0)
	line := []byte(`time=2026-12-01T03:02:38.782Z level=INFO msg=request method=GET path="GET /verify" status=200` + "\n")
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for range lines {
				if _, err := w.Write(line); err != nil {
					t.Error(err)
					return
				}
				time.Sleep(20 * time.Microsecond) // a request's work
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := out.buf.Len(); got != writers*lines*len(line) {
		t.Fatalf("%d bytes written, want %d", got, writers*lines*len(line))
	}
	if out.writes*10 > writers*lines {
		t.Errorf("%d lines took %d writes; a busy writer should batch them", writers*lines, out.writes)
	}
	t.Logf("%d lines in %d writes", writers*lines, out.writes)
}
