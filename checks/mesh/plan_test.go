package mesh

import (
	"errors"
	"testing"
	"time"
)

func TestPlanValidate(t *testing.T) {
	cases := []struct {
		name string
		p    Plan
		want []error
	}{
		{"all", Plan{Mode: ModeAll}, nil},
		{"ring", Plan{Mode: ModeRing, K: 3}, nil},
		{"sweep", Plan{Mode: ModeSweep, K: 3, Sweep: 8, Epoch: time.Minute}, nil},
		{"no mode", Plan{}, []error{ErrMode}},
		{"ring k 0", Plan{Mode: ModeRing}, []error{ErrK}},
		{"ring with sweep", Plan{Mode: ModeRing, K: 2, Sweep: 1}, []error{ErrExtra}},
		{"all with k", Plan{Mode: ModeAll, K: 2}, []error{ErrExtra}},
		{"sweep everything missing", Plan{Mode: ModeSweep}, []error{ErrK, ErrSweep, ErrEpoch}},
	}
	for _, c := range cases {
		err := c.p.Validate()
		if (err == nil) != (len(c.want) == 0) {
			t.Errorf("%s: Validate() = %v, want %v", c.name, err, c.want)
		}
		for _, w := range c.want {
			if !errors.Is(err, w) {
				t.Errorf("%s: %v does not wrap %v", c.name, err, w)
			}
		}
	}
}

func TestParseMode(t *testing.T) {
	for _, m := range []Mode{ModeAll, ModeRing, ModeSweep} {
		got, err := ParseMode(m.String())
		if err != nil || got != m {
			t.Errorf("ParseMode(%q) = %v, %v", m.String(), got, err)
		}
	}
	if _, err := ParseMode("random"); !errors.Is(err, ErrMode) {
		t.Errorf("ParseMode(random) error %v, want ErrMode", err)
	}
}

func TestRoleLabelled(t *testing.T) {
	if !RoleRing.Labelled() || !RoleAll.Labelled() || RoleSweep.Labelled() {
		t.Fatal("only ring and all results may carry the peer attribute")
	}
	if RoleRing.String() != "ring" || RoleSweep.String() != "sweep" || RoleAll.String() != "all" {
		t.Fatal("role attribute values changed")
	}
}

func TestEpochAt(t *testing.T) {
	p := 10 * time.Minute
	base := time.Unix(0, 0)
	cases := []struct {
		at   time.Time
		want int64
	}{
		{base, 0},
		{base.Add(p - 1), 0},
		{base.Add(p), 1},
		{base.Add(-1), -1},
		{base.Add(-p), -1},
		{base.Add(-p - 1), -2},
	}
	for _, c := range cases {
		if got := EpochAt(c.at, p); got != c.want {
			t.Errorf("EpochAt(%v) = %d, want %d", c.at.Sub(base), got, c.want)
		}
	}
}

func TestCoverageEpochs(t *testing.T) {
	cases := []struct{ n, k, s, want int }{
		{10, 3, 8, 1}, {100, 3, 8, 12}, {1000, 3, 8, 125}, {10000, 3, 8, 1250}, {4, 3, 8, 0}, {2, 3, 8, 0}, {12, 3, 8, 1}, {13, 3, 8, 2}, {10, 3, 0, -1},
	}
	for _, c := range cases {
		if got := CoverageEpochs(c.n, c.k, c.s); got != c.want {
			t.Errorf("CoverageEpochs(%d, %d, %d) = %d, want %d", c.n, c.k, c.s, got, c.want)
		}
	}
}
