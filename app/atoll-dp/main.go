// Command atoll-dp is Atoll's data-plane agent. It runs next to a workload,
// registers its dataplane with the zone control plane and then either runs
// Envoy (restarting it on crashes, draining it on SIGINT/SIGTERM) or keeps a
// proxyless gRPC application's xDS bootstrap and certificate files fresh.
//
//	atoll-dp run --cp-address https://cp:5678 --ca-cert-file ca.pem \
//	    --dataplane-file dp.yaml --dataplane-token-file token [--mode envoy|proxyless]
//	atoll-dp version
//
// The first SIGINT or SIGTERM stops it gracefully; a second one exits at
// once (Envoy, if running, then receives SIGTERM from the kernel). See
// README.md next to this file for every flag and variable.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/atoll-mesh/atoll/app/atoll-dp/cli"
	"github.com/atoll-mesh/atoll/pkg/resource"
)

func main() {
	os.Exit(run())
}

func run() int {
	// The agent reads Dataplane documents only: it needs the core types, not
	// the bundled policies.
	reg, err := resource.NewRegistry(resource.CoreDescriptors()...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "atoll-dp: building the resource registry:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // restore default signal handling: a second signal exits at once
	}()
	return cli.Execute(ctx, cli.Deps{
		Environ:  os.Environ(),
		Stdout:   os.Stdout,
		Stderr:   os.Stderr,
		Registry: reg,
	}, os.Args[1:])
}
