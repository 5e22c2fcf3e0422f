package fastlog_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/keymint/keymint/internal/fastlog"
)

// records are what keymint serve logs per request, and records the fast
// path must leave to slog.
func records() []slog.Record {
	at := time.Date(2026, 12, 1, 3, 2, 38, 782_123_456, time.UTC)
	rec := func(t time.Time, level slog.Level, msg string, attrs ...slog.Attr) slog.Record {
		r := slog.NewRecord(t, level, msg, 0)
		r.AddAttrs(attrs...)
		return r
	}
	request := []slog.Attr{
		slog.String("method", "GET"), slog.String("path", "GET /verify"), slog.Int("status", 200),
		slog.Duration("duration", 2523533*time.Nanosecond), slog.String("remote", "127.0.0.1"),
		slog.String("key_id", "key_SXTKp6svLD9hAZY6"),
	}
	return []slog.Record{
		rec(at, slog.LevelInfo, "request", request...),
		rec(at.In(time.FixedZone("CET", 3600)), slog.LevelError, "request", request...),
		rec(time.Time{}, slog.LevelDebug, "request", request...),
		rec(at, slog.LevelInfo+2, "request", slog.Duration("duration", 750*time.Microsecond), slog.Duration("d", 0), slog.Duration("h", 90*time.Minute)),
		rec(at, slog.LevelWarn, "request", slog.String("path", "(no route)"), slog.String("remote", "[::1]:40000"), slog.Int("status", -1)),
		rec(at, slog.LevelInfo, "request", slog.String("cause", `wrong secret for "x"`)),     // quotes: slog's path
		rec(at, slog.LevelInfo, "request", slog.String("cause", "a=b")),                      // '=': slog's path
		rec(at, slog.LevelInfo, "request", slog.String("cause", "")),                         // empty: slog's path
		rec(at, slog.LevelInfo, "request", slog.String("cause", "línea\tdos")),               // non-ASCII, tab
		rec(at, slog.LevelInfo, "request", slog.Any("err", errors.New("boom"))),              // not a string
		rec(at, slog.LevelInfo, "request", slog.Bool("ok", true)),                            // a kind left to slog
		rec(at, slog.LevelInfo, "request", slog.Group("g", slog.String("a", "b"))),           // a group
		rec(at, slog.LevelInfo, "two words", slog.String("a", "b")),                          // a message with a space
		rec(at, slog.LevelInfo, "request", slog.String("x<y", "b"), slog.String("k", "<&>")), // HTML characters
	}
}

// TestSameAsSlog: every record is written exactly as slog's own handler
// writes it, in text and in JSON.
func TestSameAsSlog(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		for i, r := range records() {
			var want, got bytes.Buffer
			var slogH, fastH slog.Handler
			if format == "json" {
				slogH, fastH = slog.NewJSONHandler(&want, &slog.HandlerOptions{Level: slog.LevelDebug}), fastlog.NewJSON(&got, slog.LevelDebug)
			} else {
				slogH, fastH = slog.NewTextHandler(&want, &slog.HandlerOptions{Level: slog.LevelDebug}), fastlog.NewText(&got, slog.LevelDebug)
			}
			if err := slogH.Handle(context.Background(), r.Clone()); err != nil {
				t.Fatal(err)
			}
			if err := fastH.Handle(context.Background(), r.Clone()); err != nil {
				t.Fatal(err)
			}
			if got.String() != want.String() {
				t.Errorf("%s record %d:\n got %s\nwant %s", format, i, got.String(), want.String())
			}
		}
	}
}

// FuzzSameAsSlog: any string value, key and message is written as slog
// writes it.
func FuzzSameAsSlog(f *testing.F) {
	f.Add("request", "path", "GET /verify", int64(200), int64(2523533))
	f.Add("m", "k", "a b=c", int64(-1), int64(0))
	f.Add("m", "k", "\x00\xff", int64(0), int64(1))
	f.Fuzz(func(t *testing.T, msg, key, value string, n, d int64) {
		for _, json := range []bool{false, true} {
			r := slog.NewRecord(time.Unix(0, n).UTC(), slog.LevelInfo, msg, 0)
			r.AddAttrs(slog.String(key, value), slog.Int64("n", n), slog.Duration("d", time.Duration(d)))
			var want, got bytes.Buffer
			if json {
				_ = slog.NewJSONHandler(&want, nil).Handle(context.Background(), r.Clone())
				_ = fastlog.NewJSON(&got, nil).Handle(context.Background(), r.Clone())
			} else {
				_ = slog.NewTextHandler(&want, nil).Handle(context.Background(), r.Clone())
				_ = fastlog.NewText(&got, nil).Handle(context.Background(), r.Clone())
			}
			if got.String() != want.String() {
				t.Errorf("json=%v:\n got %q\nwant %q", json, got.String(), want.String())
			}
		}
	})
}

// TestLevel: records below the minimum level are not enabled; a logger
// with attributes of its own still writes.
func TestLevel(t *testing.T) {
	var out bytes.Buffer
	log := slog.New(fastlog.NewText(&out, slog.LevelInfo))
	log.Debug("hidden")
	log.With("a", "b").Info("shown", "c", "d")
	if got := out.String(); bytes.Contains(out.Bytes(), []byte("hidden")) || !bytes.Contains(out.Bytes(), []byte("msg=shown a=b c=d")) {
		t.Errorf("wrote %q", got)
	}
}

func BenchmarkRequestLine(b *testing.B) {
	r := records()[0]
	for _, c := range []struct {
		name string
		h    slog.Handler
	}{
		{"slog-text", slog.NewTextHandler(discard{}, nil)},
		{"fastlog-text", fastlog.NewText(discard{}, nil)},
		{"slog-json", slog.NewJSONHandler(discard{}, nil)},
		{"fastlog-json", fastlog.NewJSON(discard{}, nil)},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = c.h.Handle(context.Background(), r)
			}
		})
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// TestTimesAcrossSeconds: one handler writing lines through many seconds,
// forwards and back, across a midnight and a new year, writes each line's
// time as slog does (the text format keeps the second it last wrote).
func TestTimesAcrossSeconds(t *testing.T) {
	var want, got bytes.Buffer
	slogH, fastH := slog.NewTextHandler(&want, nil), fastlog.NewText(&got, nil)
	base := time.Date(2026, 12, 31, 23, 59, 58, 0, time.UTC)
	for _, d := range []time.Duration{0, 1, 999 * time.Millisecond, time.Second, 1500 * time.Millisecond,
		-time.Second, 2 * time.Second, 2*time.Second + 999_999_999, 3 * time.Second, 62 * time.Second, -24 * time.Hour} {
		r := slog.NewRecord(base.Add(d), slog.LevelInfo, "request", 0)
		r.AddAttrs(slog.Int("status", 200))
		if err := slogH.Handle(context.Background(), r.Clone()); err != nil {
			t.Fatal(err)
		}
		if err := fastH.Handle(context.Background(), r.Clone()); err != nil {
			t.Fatal(err)
		}
	}
	if got.String() != want.String() {
		t.Errorf("got:\n%s\nwant:\n%s", got.String(), want.String())
	}
}
