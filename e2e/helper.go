//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"strings"
)

// Helper modes: a process built from this package (the test binary or the
// stack launcher) re-run with one of these set in its environment serves
// that role instead of running the program, so the role outlives a
// detached launcher (make stack).
const (
	// LogStoreEnv = "addr,file": the OTLP log store behind Fluent Bit.
	LogStoreEnv = "HEARTBEAT_E2E_LOG_STORE"
	// CRILogEnv = "file": run the command in the arguments and write its
	// stdout and stderr to file in the CRI log format, as the container
	// runtime does for the kubelet.
	CRILogEnv = "HEARTBEAT_E2E_CRI_LOG"
)

// RunHelperIfRequested serves a helper role and exits when its variable is
// set, and returns at once otherwise. Call it first thing in main or TestMain.
func RunHelperIfRequested() {
	if spec := os.Getenv(LogStoreEnv); spec != "" {
		listen, file, ok := strings.Cut(spec, ",")
		if !ok {
			fmt.Fprintf(os.Stderr, "%s=%q: want addr,file\n", LogStoreEnv, spec)
			os.Exit(2)
		}
		if err := serveLogStore(listen, file); err != nil {
			fmt.Fprintln(os.Stderr, "log store:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if file := os.Getenv(CRILogEnv); file != "" {
		os.Exit(runCRILogger(file, os.Args[1:]))
	}
}
