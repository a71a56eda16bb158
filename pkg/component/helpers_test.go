package component

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"
)

// waitLimit bounds every wait in these tests; reaching it is a failure, never
// the thing a test asserts on.
const waitLimit = 5 * time.Second

// recv returns the next value of ch or fails the test.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitLimit):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// probe is a component that reports its lifecycle on channels and runs until
// its context ends.
type probe struct {
	name    string
	started chan struct{}
	stopped chan error
}

func newProbe(name string) *probe {
	return &probe{name: name, started: make(chan struct{}, 16), stopped: make(chan error, 16)}
}

func (p *probe) Name() string { return p.name }

func (p *probe) Start(ctx context.Context) error {
	p.started <- struct{}{}
	<-ctx.Done()
	p.stopped <- ctx.Err()
	return fmt.Errorf("%s serving: %w", p.name, ctx.Err())
}

// logRecorder is a slog.Handler that keeps messages so that a test can wait
// for the moment the code under test logs one.
type logRecorder struct {
	mu       sync.Mutex
	messages []string
	notify   chan struct{}
}

func newLogRecorder() *logRecorder { return &logRecorder{notify: make(chan struct{}, 1)} }

func (r *logRecorder) logger() *slog.Logger { return slog.New(r) }

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &attrHandler{rec: r, attrs: attrs}
}
func (r *logRecorder) WithGroup(string) slog.Handler { return r }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	return r.add(rec.Message, nil)
}

func (r *logRecorder) add(msg string, attrs []slog.Attr) error {
	line := msg
	for _, a := range attrs {
		line += " " + a.String()
	}
	r.mu.Lock()
	r.messages = append(r.messages, line)
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
	return nil
}

// waitFor blocks until a message equal to line has been logged.
func (r *logRecorder) waitFor(t *testing.T, line string) {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		r.mu.Lock()
		found := slices.Contains(r.messages, line)
		r.mu.Unlock()
		if found {
			return
		}
		select {
		case <-r.notify:
		case <-deadline:
			t.Fatalf("timed out waiting for log %q; got %q", line, r.messages)
		}
	}
}

type attrHandler struct {
	rec   *logRecorder
	attrs []slog.Attr
}

func (h *attrHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *attrHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &attrHandler{rec: h.rec, attrs: append(slices.Clone(h.attrs), attrs...)}
}
func (h *attrHandler) WithGroup(string) slog.Handler { return h }
func (h *attrHandler) Handle(_ context.Context, rec slog.Record) error {
	return h.rec.add(rec.Message, h.attrs)
}
