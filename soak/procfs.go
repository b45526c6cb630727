package soak

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat; it
// is 100 on every Linux architecture Go supports.
const clockTicks = 100

// ProcStat is what the soak measures of the server from /proc/PID.
type ProcStat struct {
	RSS     int64 // bytes resident (VmRSS)
	RSSAnon int64 // of which anonymous memory: heap, stacks, runtime (RssAnon)
	RSSFile int64 // of which file-backed pages: the binary's text and data (RssFile)
	PeakRSS int64 // high-water mark of RSS (VmHWM)
	Threads int
	FDs     int
	CPU     time.Duration // user + system time
}

// ReadProc reads /proc/PID/{status,stat,fd}.
func ReadProc(pid int) (ProcStat, error) {
	var s ProcStat
	dir := "/proc/" + strconv.Itoa(pid)
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return s, fmt.Errorf("reading %s/status: %w", dir, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(val)
		if len(fields) == 0 {
			continue
		}
		n, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			continue
		}
		switch key {
		case "VmRSS":
			s.RSS = n << 10 // kB
		case "RssAnon":
			s.RSSAnon = n << 10
		case "RssFile":
			s.RSSFile = n << 10
		case "VmHWM":
			s.PeakRSS = n << 10
		case "Threads":
			s.Threads = int(n)
		}
	}
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return s, fmt.Errorf("reading %s/stat: %w", dir, err)
	}
	// The command name may contain spaces and parentheses; fields resume
	// after the last ')'. utime and stime are fields 14 and 15 of the line.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return s, fmt.Errorf("%s/stat: no ')' in %q", dir, stat)
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return s, fmt.Errorf("%s/stat: %d fields after the name, want at least 13", dir, len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return s, fmt.Errorf("%s/stat: utime %q stime %q", dir, f[11], f[12])
	}
	s.CPU = time.Duration(utime+stime) * time.Second / clockTicks
	fds, err := os.ReadDir(dir + "/fd")
	if err != nil {
		return s, fmt.Errorf("counting %s/fd: %w", dir, err)
	}
	s.FDs = len(fds)
	return s, nil
}

// Goroutines reads the total ("goroutine profile: total N") from the server's goroutine profile.
func Goroutines(ctx context.Context, c *http.Client, admin string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/debug/pprof/goroutine?debug=1", nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, fmt.Errorf("goroutine profile: %w", err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	_, _ = io.Copy(io.Discard, resp.Body)
	if err != nil {
		return 0, fmt.Errorf("goroutine profile: %s: %w", resp.Status, err)
	}
	const prefix = "goroutine profile: total "
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(line, prefix) {
		return 0, fmt.Errorf("goroutine profile: %s: first line %q", resp.Status, line)
	}
	n, err := strconv.Atoi(strings.TrimSpace(line[len(prefix):]))
	if err != nil {
		return 0, fmt.Errorf("goroutine profile: first line %q: %w", line, err)
	}
	return n, nil
}

// FormatBytes renders n in MiB with one decimal.
func FormatBytes(n int64) string {
	return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB"
}

// GoroutineStacks counts the server's goroutines by stack, function names only, so profiles compare.
func GoroutineStacks(ctx context.Context, c *http.Client, admin string) (map[string]int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/debug/pprof/goroutine?debug=1", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("goroutine profile: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("goroutine profile: %s: %v", resp.Status, err)
	}
	stacks := map[string]int{}
	_, profile, _ := strings.Cut(string(body), "\n") // drop "goroutine profile: total N"
	for _, block := range strings.Split(profile, "\n\n") {
		lines := strings.Split(strings.TrimSpace(block), "\n")
		n, _, ok := strings.Cut(lines[0], " @ ")
		count, err := strconv.Atoi(n)
		if !ok || err != nil {
			continue
		}
		var funcs []string
		for _, l := range lines[1:] {
			// "#\t0x4499b1\tnet/http.(*conn).serve+0x5b1\t/usr/local/go/src/net/http/server.go:2102"
			f := strings.Fields(l)
			if len(f) >= 3 && f[0] == "#" {
				name, _, _ := strings.Cut(f[2], "+0x")
				funcs = append(funcs, name)
			}
		}
		stacks[strings.Join(funcs, " < ")] += count
	}
	return stacks, nil
}

// StackGrowth lists the stacks that have more goroutines in after than in before.
func StackGrowth(before, after map[string]int) []string {
	var out []string
	for stack, n := range after {
		if d := n - before[stack]; d > 0 {
			out = append(out, fmt.Sprintf("+%d %s", d, stack))
		}
	}
	slices.Sort(out)
	return out
}
