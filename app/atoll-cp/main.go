// Command atoll-cp is the Atoll control plane.
//
//	atoll-cp run [--config FILE] [--mode standalone|zone|global] [--environment universal|kubernetes]
//	atoll-cp config print [same flags]
//	atoll-cp version
//
// Configuration comes from defaults, then the YAML file, then ATOLL_*
// environment variables, then flags; see package config. SIGINT or SIGTERM
// stops the control plane gracefully; a second signal exits at once.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/atoll-mesh/atoll/api/validate"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // restore default signal handling: a second signal exits at once
	}()
	code := execute(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// execute runs the command line args and returns the process exit code:
// 0 on success (including a graceful stop after a signal), 1 on any error,
// which is written to stderr.
func execute(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	root := newRootCommand(environ, stdout, stderr)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		_, _ = fmt.Fprintf(stderr, "atoll-cp: %s\n", explain(err))
		var usage usageError
		if errors.As(err, &usage) {
			_, _ = fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", usage.command)
		}
		return 1
	}
	return 0
}

// usageError is a mistake in the command line itself.
type usageError struct {
	command string
	err     error
}

// Error returns the underlying message.
func (e usageError) Error() string { return e.err.Error() }

// Unwrap returns the underlying error.
func (e usageError) Unwrap() error { return e.err }

// explain renders err for a person: a list of field problems is written one
// per line below its context, instead of joined by semicolons.
func explain(err error) string {
	var problems validate.Errors
	if !errors.As(err, &problems) || len(problems) < 2 {
		return err.Error()
	}
	prefix, found := strings.CutSuffix(err.Error(), problems.Error())
	if !found {
		return err.Error()
	}
	lines := make([]string, len(problems))
	for i, p := range problems {
		lines[i] = "  " + p.Error()
	}
	return strings.TrimSuffix(prefix, ": ") + ":\n" + strings.Join(lines, "\n")
}
