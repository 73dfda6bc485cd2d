package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// progressHandler writes one line per event to stderr, prefixed with the
// seconds since the command started, readable in a CI log without a TTY:
//
//	[  1.2s] pushing ref=registry.example.com/app:7c77eb36 bytes=1048576 of=5242880
type progressHandler struct {
	mu    *sync.Mutex
	w     io.Writer
	start time.Time
	level slog.Level
	attrs []slog.Attr
}

func newLogger(w io.Writer, verbose bool) *slog.Logger {
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	return slog.New(&progressHandler{mu: &sync.Mutex{}, w: w, start: time.Now(), level: level})
}

func (h *progressHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *progressHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	if h.level < slog.LevelInfo { // -v: milliseconds, to see where time goes
		fmt.Fprintf(&b, "[%7.3fs] ", time.Since(h.start).Seconds())
	} else {
		fmt.Fprintf(&b, "[%5.1fs] ", time.Since(h.start).Seconds())
	}
	if r.Level >= slog.LevelWarn {
		b.WriteString(strings.ToLower(r.Level.String()) + ": ")
	}
	b.WriteString(r.Message)
	add := func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value.Any())
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	b.WriteByte('\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, b.String())
	return err
}

func (h *progressHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr{}, h.attrs...), as...)
	return &c
}

func (h *progressHandler) WithGroup(string) slog.Handler { return h }
