package config

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestNetworkChecksDefaults(t *testing.T) {
	t.Parallel()
	f, err := parse("t.yaml", []byte(`checks:
  - {name: ping, type: icmp, target: 10.0.0.1}
  - {name: pmtu, type: mtu, target: "fd00::1"}
  - {name: pmtu-http, type: mtu, target: "http://10.0.0.1:8080", mtu: {mode: http}}
  - {name: strict, type: icmp, target: gw.example.com, icmp: {max_loss: 0}}
`), lookupTestEnv)
	if err != nil {
		t.Fatal(err)
	}
	c := f.Checks
	if want := (ICMPOptions{Count: 3, Spacing: 100 * time.Millisecond, Size: 56, MaxLoss: 1}); c[0].ICMP != want {
		t.Errorf("icmp defaults %+v, want %+v", c[0].ICMP, want)
	}
	if c[0].Server != (HostPort{Host: "10.0.0.1"}) {
		t.Errorf("icmp server %+v", c[0].Server)
	}
	wantMTU := MTUOptions{Mode: MTUModeICMP, MaxMTU: 9000, Ladder: DefaultMTULadder(), Tries: 3, Wait: 500 * time.Millisecond}
	if !reflect.DeepEqual(c[1].MTU, wantMTU) || c[1].Server != (HostPort{Host: "fd00::1"}) {
		t.Errorf("mtu defaults %+v server %+v, want %+v", c[1].MTU, c[1].Server, wantMTU)
	}
	wantHTTP := MTUOptions{Mode: MTUModeHTTP, Sizes: DefaultMTUSizes(), Tries: 2, FetchTimeout: 2 * time.Second}
	if !reflect.DeepEqual(c[2].MTU, wantHTTP) || c[2].URL == nil || c[2].Server != (HostPort{"10.0.0.1", 8080}) {
		t.Errorf("http mode %+v url %v server %+v, want %+v", c[2].MTU, c[2].URL, c[2].Server, wantHTTP)
	}
	if c[3].ICMP.MaxLoss != 0 {
		t.Errorf("an explicit max_loss: 0 became %v", c[3].ICMP.MaxLoss)
	}
}

func TestNetworkChecksErrors(t *testing.T) {
	t.Parallel()
	const head = "checks:\n  - name: a\n"
	for _, tc := range []struct{ name, yaml, want string }{
		{"icmp with a port", head + "    type: icmp\n    target: 10.0.0.1:22\n",
			"t.yaml:4: checks[0].target: must be a host name or IP address, without a port"},
		{"icmp with a URL", head + "    type: icmp\n    target: http://x/\n",
			"t.yaml:4: checks[0].target: must be a host name or IP address, not a URL"},
		{"icmp options", head + "    type: icmp\n    target: 10.0.0.1\n    icmp: {count: 0, size: 70000, ttl: 300, ip_version: 5, max_loss: 2}\n",
			"t.yaml:5: checks[0].icmp.count: must be between 1 and 1000\n" +
				"t.yaml:5: checks[0].icmp.ip_version: must be 4 or 6 (0: either)\n" +
				"t.yaml:5: checks[0].icmp.max_loss: must be a fraction between 0 and 1\n" +
				"t.yaml:5: checks[0].icmp.size: must be between 1 and 65507 bytes\n" +
				"t.yaml:5: checks[0].icmp.ttl: must be between 1 and 255 (0: the system default)"},
		{"burst longer than the timeout", head + "    type: icmp\n    target: 10.0.0.1\n    timeout: 1s\n    icmp:\n      count: 20\n      spacing: 100ms\n",
			"t.yaml:8: checks[0].icmp.spacing: count × spacing must fit in the check's timeout (1s) with time left for the last reply"},
		{"unknown icmp key", head + "    type: icmp\n    target: 10.0.0.1\n    icmp: {interval: 1s}\n",
			"t.yaml:5: checks[0].icmp.interval: unknown field"},
		{"icmp block on tcp", head + "    type: tcp\n    target: h:22\n    icmp: {count: 2}\n",
			"t.yaml:5: checks[0].icmp: only used by icmp checks"},
		{"mtu mode", head + "    type: mtu\n    target: 10.0.0.1\n    mtu: {mode: udp}\n",
			`t.yaml:5: checks[0].mtu.mode: unknown mode "udp" (want icmp or http)`},
		{"http mode needs a URL", head + "    type: mtu\n    target: 10.0.0.1\n    mtu: {mode: http}\n",
			"t.yaml:4: checks[0].target: http mode needs the payload server's URL (e.g. http://10.0.0.1:8080)"},
		{"a URL needs http mode", head + "    type: mtu\n    target: http://10.0.0.1:8080\n",
			"t.yaml:4: checks[0].target: icmp mode needs a host name or IP address; a URL needs mode: http"},
		{"http mode base URL", head + "    type: mtu\n    target: http://10.0.0.1:8080/heartbeat/1\n    mtu: {mode: http}\n",
			"t.yaml:4: checks[0].target: must be the payload server's base URL: /heartbeat/{n} is added"},
		{"mtu sizes", head + "    type: mtu\n    target: 10.0.0.1\n    mtu:\n      ladder: [1500, 40]\n      min_mtu: 10000\n      tries: 0\n",
			"t.yaml:6: checks[0].mtu.ladder[1]: must be between 68 and 65535 bytes\n" +
				"t.yaml:7: checks[0].mtu.min_mtu: must be between 68 and max_mtu (1500)\n" +
				"t.yaml:8: checks[0].mtu.tries: must be between 1 and 10"},
		{"icmp options in http mode", head + "    type: mtu\n    target: http://10.0.0.1:8080\n    mtu: {mode: http, min_mtu: 1400, ladder: [1400]}\n",
			"t.yaml:5: checks[0].mtu.ladder: not used in http mode\n" +
				"t.yaml:5: checks[0].mtu.min_mtu: not used in http mode"},
		{"search longer than the timeout", head + "    type: mtu\n    target: 10.0.0.1\n    timeout: 2s\n    mtu: {wait: 1s}\n",
			"t.yaml:6: checks[0].mtu.wait: tries × wait must fit in half the check's timeout (2s): a search needs several sizes"},
	} {
		_, err := parse("t.yaml", []byte(tc.yaml), lookupTestEnv)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s:\n got: %v\nwant: %s", tc.name, err, tc.want)
		}
		if err != nil && !errors.Is(err, ErrInvalidValue) && !errors.Is(err, ErrUnknownField) {
			t.Errorf("%s: %v is neither ErrInvalidValue nor ErrUnknownField", tc.name, err)
		}
	}
}
