package testkit

import (
	"testing"

	"google.golang.org/grpc"
)

// ServeGRPC serves srv on a free loopback port until the test ends and returns its address.
func ServeGRPC(t testing.TB, srv *grpc.Server) string {
	t.Helper()
	ln := listen(t)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Stop()
		if err := <-done; err != nil {
			t.Errorf("grpc server: %v", err)
		}
	})
	return ln.Addr().String()
}
