//go:build e2e

package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// criMaxLine is containerd's default max_container_log_line_size: longer
// lines are split into partial ("P") entries ending with a full ("F") one.
const criMaxLine = 16 * 1024

// runCRILogger runs argv with its stdout and stderr written to file as the
// container runtime writes a container's log for the kubelet
// (/var/log/pods/<ns>_<pod>_<uid>/<container>/0.log):
//
//	2026-12-01T08:00:00.123456789Z stdout F <line>
//
// and copied unchanged to its own stdout and stderr. It returns argv's exit
// code. SIGTERM and SIGINT reach argv through the process group; the logger
// only waits for argv to exit and writes what it printed on the way out.
func runCRILogger(file string, argv []string) int {
	if len(argv) == 0 {
		fmt.Fprintln(os.Stderr, "cri logger: no command")
		return 2
	}
	out, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cri logger:", err)
		return 1
	}
	defer out.Close()
	signal.Notify(make(chan os.Signal, 1), syscall.SIGTERM, syscall.SIGINT)

	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cri logger:", err)
		return 1
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cri logger:", err)
		return 1
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "cri logger:", err)
		return 1
	}
	w := &criWriter{out: out}
	var wg sync.WaitGroup
	wg.Go(func() { w.copy(stdout, "stdout", os.Stdout) })
	wg.Go(func() { w.copy(stderr, "stderr", os.Stderr) })
	wg.Wait()
	err = cmd.Wait()
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		return ee.ExitCode()
	} else if err != nil {
		fmt.Fprintln(os.Stderr, "cri logger:", err)
		return 1
	}
	return 0
}

// criWriter serializes entries from both streams into one file.
type criWriter struct {
	mu  sync.Mutex
	out io.Writer
}

func (w *criWriter) copy(r io.Reader, stream string, raw io.Writer) {
	br := bufio.NewReaderSize(r, criMaxLine)
	for {
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 {
			raw.Write(chunk)
			tag := "F"
			if errors.Is(err, bufio.ErrBufferFull) {
				tag = "P"
			}
			line := chunk
			if line[len(line)-1] == '\n' {
				line = line[:len(line)-1]
			}
			w.mu.Lock()
			fmt.Fprintf(w.out, "%s %s %s %s\n", time.Now().UTC().Format(time.RFC3339Nano), stream, tag, line)
			w.mu.Unlock()
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}
