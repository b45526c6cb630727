package probe

import (
	"net/http/httptrace"
	"net/netip"
	"sort"
	"sync"
	"time"
)

// recorder collects the phases of one run from httptrace hooks, which may
// fire on the transport's goroutines, hence the mutex.
type recorder struct {
	mu     sync.Mutex
	phases []PhaseTiming
	open   map[string]time.Time
	// remote is the address of the last connection established.
	remote netip.AddrPort
}

func newRecorder() *recorder {
	return &recorder{open: make(map[string]time.Time, 4)}
}

// start opens a phase; a phase already open (parallel connect attempts of a
// happy-eyeballs dial) keeps its first start.
func (r *recorder) start(name string) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.open[name]; !ok {
		r.open[name] = now
	}
}

// end closes a phase if it is open.
func (r *recorder) end(name string) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.endLocked(name, now)
}

func (r *recorder) endLocked(name string, now time.Time) {
	if s, ok := r.open[name]; ok {
		r.phases = append(r.phases, PhaseTiming{Name: name, Start: s, End: now})
		delete(r.open, name)
	}
}

// connected notes the peer of a connection; addr is "ip:port" as net reports it.
func (r *recorder) connected(addr string) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.remote = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// closeAll closes the phases still open at now (the ones a timeout cut
// short) and returns every phase in start order, the name of the latest
// phase that was still running, and the remote address.
func (r *recorder) closeAll(now time.Time) (phases []PhaseTiming, running string, remote netip.AddrPort) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var latest time.Time
	for name, s := range r.open {
		if running == "" || s.After(latest) {
			running, latest = name, s
		}
	}
	for name := range r.open {
		r.endLocked(name, now)
	}
	sort.SliceStable(r.phases, func(i, j int) bool { return r.phases[i].Start.Before(r.phases[j].Start) })
	return r.phases, running, r.remote
}

// dialTrace records the dns and connect phases of a net.Dialer dial (the net
// package reports them through httptrace's context hooks). A phase that
// fails stays open: closeAll closes it and names it in a timeout's reason,
// and a retry on another address extends it.
func (r *recorder) dialTrace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		DNSStart: func(httptrace.DNSStartInfo) { r.start(PhaseDNS) },
		DNSDone: func(info httptrace.DNSDoneInfo) {
			if info.Err == nil {
				r.end(PhaseDNS)
			}
		},
		ConnectStart: func(_, _ string) { r.start(PhaseConnect) },
		ConnectDone: func(_, addr string, err error) {
			if err == nil {
				r.end(PhaseConnect)
				r.connected(addr)
			}
		},
	}
}
