package payload

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Smallest exact answers, from RFC 9112 arithmetic rather than from the
// code: "HTTP/1.1 200 OK\r\n" (17), a Date line (6+29+2), "Content-Length:
// 10\r\n" (20), the blank line (2) and the 10-byte body; closing adds
// "Connection: close\r\n" (19).
const (
	wireMinKeepAlive = 17 + 37 + 20 + 2 + 10
	wireMinClose     = wireMinKeepAlive + 19
)

// wireSizes are the totals tried: a dense run from the smallest answer up,
// every total near a Content-Length digit change and near the header tiers,
// MSS multiples, and large bodies.
func wireSizes() []int {
	var ns []int
	for n := wireMinKeepAlive; n < wireMinKeepAlive+400; n++ {
		ns = append(ns, n)
	}
	for _, b := range []int{1000, 10000, 100000} {
		for n := b - 300; n < b+300; n++ {
			ns = append(ns, n)
		}
	}
	ns = append(ns, 1448, 2*1448, 3*1448, 1500, 9000, 65535, 65536, 65537, bufSize+1, 1<<20)
	return ns
}

// readResponse reads one HTTP/1.x response from br and returns its length
// in bytes as they came off the socket, its headers and its body.
func readResponse(t *testing.T, br *bufio.Reader, head bool) (total int, hdr http.Header, status string, body string) {
	t.Helper()
	hdr = http.Header{}
	length := -1
	for first := true; ; first = false {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading header after %d bytes: %v", total, err)
		}
		total += len(line)
		if !strings.HasSuffix(line, "\r\n") {
			t.Fatalf("header line %q does not end in CRLF", line)
		}
		line = strings.TrimSuffix(line, "\r\n")
		if first {
			status = line
			continue
		}
		if line == "" {
			break
		}
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			t.Fatalf("bad header line %q", line)
		}
		hdr.Add(k, v)
		if http.CanonicalHeaderKey(k) == "Content-Length" {
			if length, err = strconv.Atoi(v); err != nil {
				t.Fatalf("Content-Length %q", v)
			}
		}
	}
	if length < 0 {
		t.Fatalf("no Content-Length in %v", hdr)
	}
	if head {
		return total, hdr, status, ""
	}
	b := make([]byte, length)
	if _, err := io.ReadFull(br, b); err != nil {
		t.Fatalf("reading %d body bytes: %v", length, err)
	}
	return total + length, hdr, status, string(b)
}

// checkWireAnswer asserts an exact answer's status, body and pad.
func checkWireAnswer(t *testing.T, n int, hdr http.Header, status, body string) {
	t.Helper()
	if status != "HTTP/1.1 200 OK" && status != "HTTP/1.0 200 OK" {
		t.Fatalf("n=%d: status %q, body %q", n, status, body)
	}
	if body != expected(len(body)) {
		t.Fatalf("n=%d: body is not the pattern", n)
	}
	if pad := hdr.Get(PadHeader); pad != expected(len(pad)) {
		t.Fatalf("n=%d: pad %q is not the pattern", n, pad)
	}
	if len(hdr["Date"]) != 1 {
		t.Fatalf("n=%d: Date %q", n, hdr["Date"])
	}
	// Every header but the pad stays once n leaves room for all of them.
	if n >= 400 {
		for _, k := range []string{"Server-Timing", "X-Heartbeat-Host", "Content-Type", "X-Content-Type-Options"} {
			if hdr.Get(k) == "" {
				t.Fatalf("n=%d: no %s in %v", n, k, hdr)
			}
		}
	}
}

func TestWireSizeExactOnRawTCP(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  func(*Config)
	}{
		{"plain", func(*Config) {}},
		{"access log", func(c *Config) { c.AccessLog = io.Discard }},
		{"telemetry", func(c *Config) {
			tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
			t.Cleanup(func() { _ = tp.Shutdown(t.Context()); _ = mp.Shutdown(t.Context()) })
			c.TracerProvider, c.MeterProvider, c.Propagator = tp, mp, propagation.TraceContext{}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Host = "wire-test-pod-0"
			tc.cfg(&cfg)
			addr := startHTTPServer(t, cfg, nil)
			t.Run("keep-alive", func(t *testing.T) { wireKeepAlive(t, addr) })
			t.Run("close", func(t *testing.T) { wireClose(t, addr) })
		})
	}
}

// wireKeepAlive sends every size on one connection: each answer must be n
// bytes, and the next must start right after it.
func wireKeepAlive(t *testing.T, addr string) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
	tp := "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n"
	padded, trimmed := 0, 0
	for i, n := range wireSizes() {
		extra := ""
		if i%2 == 0 {
			extra = tp
		}
		if _, err := fmt.Fprintf(conn, "GET /heartbeat/wire/%d HTTP/1.1\r\nHost: x\r\n%s\r\n", n, extra); err != nil {
			t.Fatal(err)
		}
		total, hdr, status, body := readResponse(t, br, false)
		checkWireAnswer(t, n, hdr, status, body)
		if total != n {
			t.Fatalf("n=%d: %d bytes on the wire (headers %v)", n, total, hdr)
		}
		if hdr.Get("Connection") != "" {
			t.Fatalf("n=%d: Connection %q on a kept-alive answer", n, hdr.Get("Connection"))
		}
		if hdr.Get(PadHeader) != "" {
			padded++
		}
		if hdr.Get("X-Heartbeat-Host") == "" {
			trimmed++
		}
	}
	// The sizes cross digit gaps and header tiers: both remedies were needed.
	if padded == 0 || trimmed == 0 {
		t.Fatalf("%d padded and %d trimmed answers; the sizes should need both", padded, trimmed)
	}
	// HEAD: the same header block as GET, no body.
	n := 1448
	fmt.Fprintf(conn, "HEAD /heartbeat/wire/%d HTTP/1.1\r\nHost: x\r\n\r\n", n)
	total, hdr, _, _ := readResponse(t, br, true)
	if cl, _ := strconv.Atoi(hdr.Get("Content-Length")); total+cl != n {
		t.Fatalf("HEAD: header block %d + Content-Length %d != %d", total, cl, n)
	}
	// An upload answer carries recv timing and is still exact.
	body := strings.Repeat("x", 100000)
	fmt.Fprintf(conn, "POST /heartbeat/wire/%d HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", n, len(body), body)
	total, hdr, status, rb := readResponse(t, br, false)
	checkWireAnswer(t, n, hdr, status, rb)
	if total != n {
		t.Fatalf("POST: %d bytes on the wire", total)
	}
	if st := hdr.Get("Server-Timing"); !strings.Contains(st, ", recv;dur=") {
		t.Fatalf("POST: Server-Timing %q has no recv", st)
	}
	// Below the smallest answer: 400 with the reason, on the same connection.
	fmt.Fprintf(conn, "GET /heartbeat/wire/%d HTTP/1.1\r\nHost: x\r\n\r\n", wireMinKeepAlive-1)
	_, _, status, msg := readResponse(t, br, false)
	want := fmt.Sprintf("wire size %d is below %d bytes", wireMinKeepAlive-1, wireMinKeepAlive)
	if !strings.Contains(status, "400") || !strings.Contains(msg, want) {
		t.Fatalf("below minimum: %q %q, want 400 and %q", status, msg, want)
	}
}

// wireClose asks for each size with Connection: close (and HTTP/1.0) and
// counts every byte until the server hangs up.
func wireClose(t *testing.T, addr string) {
	sizes := []int{wireMinClose, wireMinClose + 1, wireMinClose + 11, 1000 - 1, 1000, 1001, 1002, 1003, 1004, 1448, 2 * 1448, 10003, 65536, 1 << 20}
	for _, proto := range []string{"HTTP/1.1\r\nConnection: close", "HTTP/1.0"} {
		for _, n := range sizes {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
			fmt.Fprintf(conn, "GET /heartbeat/wire/%d %s\r\nHost: x\r\n\r\n", n, proto)
			all, err := io.ReadAll(conn)
			conn.Close()
			if err != nil {
				t.Fatal(err)
			}
			if len(all) != n {
				t.Fatalf("%s n=%d: %d bytes before the hang-up: %q", proto, n, len(all), all[:min(len(all), 300)])
			}
			_, hdr, status, body := readResponse(t, bufio.NewReader(strings.NewReader(string(all))), false)
			checkWireAnswer(t, n, hdr, status, body)
		}
	}
	// The smallest answer that closes is 19 bytes larger than a kept-alive one.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /heartbeat/wire/%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", wireMinClose-1)
	all, _ := io.ReadAll(conn)
	if !strings.Contains(string(all), fmt.Sprintf("below %d bytes", wireMinClose)) {
		t.Fatalf("close below minimum: %q", all)
	}
}

func TestWireSizeBounds(t *testing.T) {
	_, ts := newTestServer(t, Config{})
	for _, tc := range []struct{ path, want string }{
		{"/heartbeat/wire/abc", "wire size: size must be a plain decimal integer"},
		{"/heartbeat/wire/", "wire size: size must be a plain decimal integer: empty"},
		{"/heartbeat/wire/1048577", "wire size: size out of range"},
		{"/heartbeat/wire/5", "is below"},
	} {
		resp, err := http.Get(ts.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), tc.want) {
			t.Errorf("%s: %d %q, want 400 with %q", tc.path, resp.StatusCode, b, tc.want)
		}
	}
}

// Over HTTP/2 the header fields and body are those of the HTTP/1.1 answer.
func TestWireSizeOverH2C(t *testing.T) {
	addr := startHTTPServer(t, testConfig(), nil)
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	client := &http.Client{Transport: &http.Transport{Protocols: &protocols}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("http://" + addr + "/heartbeat/wire/1448")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %d", resp.Proto, resp.StatusCode)
	}
	// The HTTP/1.1 form of the same fields: status line, each field as
	// "Name: value\r\n", blank line, body.
	total := len("HTTP/1.1 200 OK\r\n") + len("\r\n") + len(b)
	for k, vs := range resp.Header {
		for _, v := range vs {
			total += len(k) + 2 + len(v) + 2
		}
	}
	if total != 1448 {
		t.Fatalf("HTTP/1.1 form of the h2 answer is %d bytes, headers %v", total, resp.Header)
	}
}

func TestRecvServerTiming(t *testing.T) {
	_, ts := newTestServer(t, Config{})
	// A body that arrives in two parts 50 ms apart: recv covers the gap.
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write([]byte(strings.Repeat("a", 1000)))
		time.Sleep(50 * time.Millisecond)
		_, _ = pw.Write([]byte(strings.Repeat("b", 1000)))
		_ = pw.Close()
	}()
	req := httptest.NewRequest(http.MethodPost, ts.URL+"/heartbeat/1", pr)
	req.RequestURI = ""
	req.ContentLength = 2000
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	st := resp.Header.Get("Server-Timing")
	_, recv, ok := strings.Cut(st, ", recv;dur=")
	if !ok {
		t.Fatalf("Server-Timing %q has no recv", st)
	}
	ms, err := strconv.ParseFloat(recv, 64)
	if err != nil || ms < 50 || ms > 5000 {
		t.Fatalf("recv %q ms, want at least the 50 ms gap", recv)
	}
	// A GET has no body, so no recv.
	resp, err = http.Get(ts.URL + "/heartbeat/1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if st := resp.Header.Get("Server-Timing"); strings.Contains(st, "recv") {
		t.Fatalf("GET Server-Timing %q", st)
	}
}
