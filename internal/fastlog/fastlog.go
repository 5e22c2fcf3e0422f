// Package fastlog is a log/slog handler that writes the lines of slog's
// own text and JSON handlers, byte for byte, at a fraction of their cost
// for the records a server logs per request.
//
// keymint serve logs one line per request. Through slog.TextHandler, that
// line cost more CPU than the rest of a /verify check outside net/http: the
// handler's general machinery (attribute resolution, groups, a
// ReplaceAttr hook, quoting checks rune by rune) runs for records that are
// always a few short strings, integers and a duration. A [Handler] encodes
// such records itself and hands every other record, unchanged, to the
// slog handler it wraps, so the output is slog's in every case; the tests
// compare the two encodings on the same records.
package fastlog

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Handler is a slog.Handler writing what slog.NewTextHandler or
// slog.NewJSONHandler would, with only a minimum level as option.
type Handler struct {
	inner slog.Handler
	out   *lockedWriter
	level slog.Leveler
	json  bool
	// second is the text time's date and time to the second, for the
	// second last written: the lines of one second share it.
	second atomic.Pointer[secondPrefix]
}

// secondPrefix is "2006-01-02T15:04:05." for one second (UTC).
type secondPrefix struct {
	unix int64
	text [20]byte
}

// NewText returns a Handler writing slog's text format to w.
func NewText(w io.Writer, level slog.Leveler) *Handler {
	out := &lockedWriter{w: w}
	return &Handler{inner: slog.NewTextHandler(out, &slog.HandlerOptions{Level: level}), out: out, level: level}
}

// NewJSON returns a Handler writing slog's JSON format to w.
func NewJSON(w io.Writer, level slog.Leveler) *Handler {
	out := &lockedWriter{w: w}
	return &Handler{inner: slog.NewJSONHandler(out, &slog.HandlerOptions{Level: level}), out: out, level: level, json: true}
}

// Enabled reports whether records of level l are written.
func (h *Handler) Enabled(_ context.Context, l slog.Level) bool {
	minLevel := slog.LevelInfo
	if h.level != nil {
		minLevel = h.level.Level()
	}
	return l >= minLevel
}

// Handle writes r, encoding it here when every attribute is one the fast
// path knows, else through the wrapped slog handler.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	bp := buffers.Get().(*[]byte)
	defer buffers.Put(bp)
	b, ok := h.encode((*bp)[:0], r)
	if !ok {
		return h.inner.Handle(ctx, r)
	}
	if cap(b) <= 64<<10 {
		*bp = b // keep what it grew to, unless a rare line made it huge
	}
	return h.out.write(b)
}

// WithAttrs and WithGroup return slog's handler: records of a logger with
// attributes or groups of its own take the general path.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler { return h.inner.WithAttrs(attrs) }
func (h *Handler) WithGroup(name string) slog.Handler       { return h.inner.WithGroup(name) }

var buffers = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// encode appends r's line to b, or reports false when r has an attribute
// the fast path leaves to slog.
func (h *Handler) encode(b []byte, r slog.Record) ([]byte, bool) {
	if !isPlain(r.Message) {
		return b, false
	}
	if h.json {
		b = append(b, '{')
	}
	first := true
	if !r.Time.IsZero() {
		b = h.key(b, slog.TimeKey, &first)
		b = h.time(b, r.Time)
	}
	b = h.key(b, slog.LevelKey, &first)
	b = h.str(b, r.Level.String())
	b = h.key(b, slog.MessageKey, &first)
	b = h.str(b, r.Message)
	ok := true
	r.Attrs(func(a slog.Attr) bool {
		if !isPlain(a.Key) {
			ok = false
			return false
		}
		b = h.key(b, a.Key, &first)
		switch a.Value.Kind() {
		case slog.KindString:
			s := a.Value.String()
			if !isPlain(s) && !isQuotable(s) {
				ok = false
				return false
			}
			b = h.str(b, s)
		case slog.KindInt64:
			b = strconv.AppendInt(b, a.Value.Int64(), 10)
		case slog.KindDuration:
			if h.json {
				b = strconv.AppendInt(b, int64(a.Value.Duration()), 10)
			} else {
				b = append(b, a.Value.Duration().String()...) // bare, µ and all, as slog writes it
			}
		default:
			ok = false
			return false
		}
		return true
	})
	if !ok {
		return b, false
	}
	if h.json {
		b = append(b, '}')
	}
	return append(b, '\n'), true
}

// key appends an attribute's key and its separator.
func (h *Handler) key(b []byte, k string, first *bool) []byte {
	if !*first {
		if h.json {
			b = append(b, ',')
		} else {
			b = append(b, ' ')
		}
	}
	*first = false
	if h.json {
		b = append(b, '"')
		b = append(b, k...)
		return append(b, '"', ':')
	}
	b = append(b, k...)
	return append(b, '=')
}

// str appends a string value that isPlain or isQuotable: bare in text
// unless it holds a space, always quoted in JSON; neither needs escaping.
func (h *Handler) str(b []byte, s string) []byte {
	if h.json || !isPlain(s) {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	return append(b, s...)
}

// time appends t as slog does: to the millisecond in text, to the
// nanosecond in JSON, RFC 3339 both.
func (h *Handler) time(b []byte, t time.Time) []byte {
	if h.json {
		b = append(b, '"')
		b = t.AppendFormat(b, time.RFC3339Nano)
		return append(b, '"')
	}
	if t.Location() != time.UTC {
		return t.AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	}
	// The server logs in UTC: written digit by digit, which costs a tenth
	// of AppendFormat, and once a second: lines of the same second copy it.
	year := t.Year()
	if year < 0 || year > 9999 {
		return t.AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	}
	unix := t.Unix()
	p := h.second.Load()
	if p == nil || p.unix != unix {
		p = &secondPrefix{unix: unix}
		_, month, day := t.Date()
		hour, minute, sec := t.Clock()
		d := p.text[:0]
		d = appendDigits(d, year, 4)
		d = append(d, '-')
		d = appendDigits(d, int(month), 2)
		d = append(d, '-')
		d = appendDigits(d, day, 2)
		d = append(d, 'T')
		d = appendDigits(d, hour, 2)
		d = append(d, ':')
		d = appendDigits(d, minute, 2)
		d = append(d, ':')
		d = appendDigits(d, sec, 2)
		_ = append(d, '.')
		h.second.Store(p)
	}
	b = append(b, p.text[:]...)
	b = appendDigits(b, t.Nanosecond()/1e6, 3)
	return append(b, 'Z')
}

// appendDigits appends n, zero-padded to width digits.
func appendDigits(b []byte, n, width int) []byte {
	var d [4]byte
	for i := width - 1; i >= 0; i-- {
		d[i] = byte('0' + n%10)
		n /= 10
	}
	return append(b, d[:width]...)
}

// plainByte is true for the bytes a value may have to be written bare in
// text and unescaped in JSON.
var plainByte = func() (set [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		set[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		set[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		set[c] = true
	}
	for _, c := range "-._:/@+()[]*%" {
		set[c] = true
	}
	return set
}()

// isPlain reports whether s is non-empty and all plain bytes.
func isPlain(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !plainByte[s[i]] {
			return false
		}
	}
	return true
}

// isQuotable reports whether s is non-empty and plain bytes and spaces,
// which slog's text handler quotes as they are.
func isQuotable(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != ' ' && !plainByte[c] {
			return false
		}
	}
	return true
}

// lockedWriter serializes the writes of both paths, so that no line is
// torn by another.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) write(p []byte) error {
	_, err := l.Write(p)
	return err
}
