// Package component runs the long-lived parts of a process together: servers,
// watchers, reconcilers. A Component blocks in Start until its context ends
// or it fails; a Manager starts many concurrently, stops them all when one
// fails, and gives them a grace period to drain when the process is asked to
// exit. A LeaderGroup runs components only while this instance is the leader,
// as decided by a LeaderElector.
//
// Managers and leader groups are components themselves, so they nest:
//
//	leaderOnly := component.NewLeaderGroup(logger, elector, component.Options{Name: "leader"}, gc, defaultMesh)
//	mgr := component.NewManager(logger, component.Options{}, diagnostics, apiServer, leaderOnly)
//	err := mgr.Start(ctx)
package component

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"runtime/debug"
)

// Component is a long-lived part of a process.
type Component interface {
	// Start runs the component and blocks until ctx ends or the component
	// fails. It returns nil (or an error wrapping ctx's error) after a clean
	// stop, and an error saying what went wrong otherwise. Returning nil
	// while ctx is still live means the component has finished its work; the
	// components running beside it carry on.
	Start(ctx context.Context) error
}

// Named is implemented by components that have a name for logs and errors.
// Components without one are named after their Go type.
type Named interface {
	// Name returns a short, stable, lower-case name such as "diagnostics".
	Name() string
}

// NameOf returns c's name: Name() when c implements Named, otherwise its Go
// type, for example "*apiserver.Server".
func NameOf(c Component) string {
	if n, ok := c.(Named); ok {
		if name := n.Name(); name != "" {
			return name
		}
	}
	if c == nil {
		return "<nil>"
	}
	return reflect.TypeOf(c).String()
}

// New returns a component named name whose Start calls start.
func New(name string, start func(ctx context.Context) error) Component {
	return funcComponent{name: name, start: start}
}

type funcComponent struct {
	name  string
	start func(ctx context.Context) error
}

// Start calls the function.
func (f funcComponent) Start(ctx context.Context) error { return f.start(ctx) }

// Name returns the name given to New.
func (f funcComponent) Name() string { return f.name }

// WithName returns c under another name, for example to tell apart two
// instances of one type.
func WithName(name string, c Component) Component {
	return New(name, c.Start)
}

// startSafely runs c.Start, turning a panic into an error (its stack is
// logged) so that one broken component stops the process cleanly, letting
// the others drain, instead of crashing it mid-write.
func startSafely(ctx context.Context, logger *slog.Logger, c Component) (err error) {
	defer func() {
		if r := recover(); r != nil {
			logger.Error("component panicked", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return c.Start(ctx)
}
