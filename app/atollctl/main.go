// Command atollctl is Atoll's command-line client: it applies, reads and
// deletes resources through a control plane's REST API and keeps a list of
// control planes to talk to.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/atoll-mesh/atoll/app/atollctl/cli"
	"github.com/atoll-mesh/atoll/policies/all"
)

func main() {
	os.Exit(run())
}

func run() int {
	reg, err := all.Registry()
	if err != nil {
		fmt.Fprintln(os.Stderr, "Error: building the resource registry:", err)
		return 1
	}
	configPath := ""
	if home, err := os.UserHomeDir(); err == nil {
		configPath = filepath.Join(home, ".atollctl", "config")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return cli.Execute(ctx, cli.Deps{
		Stdin:      os.Stdin,
		Stdout:     os.Stdout,
		Stderr:     os.Stderr,
		ConfigPath: configPath,
		Getenv:     os.Getenv,
		Now:        time.Now,
		Registry:   reg,
	}, os.Args[1:])
}
