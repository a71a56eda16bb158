// Command grpc-echo is a proxyless gRPC workload for trying Atoll: it serves
// or calls a tiny echo service through gRPC's own xDS client, configured by
// the bootstrap atoll-dp writes (GRPC_XDS_BOOTSTRAP).
//
//	GRPC_XDS_BOOTSTRAP=web-1-xds.json grpc-echo serve --port 18080 --name web-1
//	GRPC_XDS_BOOTSTRAP=client-1-xds.json grpc-echo call xds:///web
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	xdscreds "google.golang.org/grpc/credentials/xds"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/xds"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: grpc-echo serve --port N [--name NAME] | grpc-echo call xds:///SERVICE")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "call":
		err = call(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q: use serve or call", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "grpc-echo:", err)
		os.Exit(1)
	}
}

type echo struct {
	testgrpc.UnimplementedTestServiceServer
	name string
}

// UnaryCall answers with the server's name and the caller's SPIFFE id.
func (e *echo) UnaryCall(ctx context.Context, _ *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	resp := &testgrpc.SimpleResponse{Hostname: e.name, Username: "(no client certificate)"}
	if p, ok := peer.FromContext(ctx); ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.PeerCertificates) > 0 {
			for _, u := range ti.State.PeerCertificates[0].URIs {
				if u.Scheme == "spiffe" {
					resp.Username = u.String()
				}
			}
		}
	}
	return resp, nil
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	port := fs.Int("port", 8080, "port to serve on (the Dataplane inbound port)")
	host := fs.String("address", "127.0.0.1", "address to serve on (the Dataplane address)")
	name := fs.String("name", "echo", "name to answer with")
	if err := fs.Parse(args); err != nil {
		return err
	}
	creds, err := xdscreds.NewServerCredentials(xdscreds.ServerOptions{FallbackCreds: insecure.NewCredentials()})
	if err != nil {
		return err
	}
	srv, err := xds.NewGRPCServer(grpc.Creds(creds))
	if err != nil {
		return fmt.Errorf("starting the xDS server (is GRPC_XDS_BOOTSTRAP set?): %w", err)
	}
	testgrpc.RegisterTestServiceServer(srv, &echo{name: *name})
	lis, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(*port)))
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); srv.GracefulStop() }()
	return srv.Serve(lis)
}

func call(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("call needs one target such as xds:///web")
	}
	creds, err := xdscreds.NewClientCredentials(xdscreds.ClientOptions{FallbackCreds: insecure.NewCredentials()})
	if err != nil {
		return err
	}
	conn, err := grpc.NewClient(args[0], grpc.WithTransportCredentials(creds))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := testgrpc.NewTestServiceClient(conn).UnaryCall(ctx, &testgrpc.SimpleRequest{}, grpc.WaitForReady(true))
	if err != nil {
		return err
	}
	fmt.Printf("answered by %s to %s\n", resp.GetHostname(), resp.GetUsername())
	return nil
}
