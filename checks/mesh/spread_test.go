package mesh

import (
	"testing"
	"time"
)

func TestSpread(t *testing.T) {
	w := 10 * time.Second
	for _, phase := range []float64{0, 0.5, 0.999} {
		got := Spread(5, w, phase)
		if len(got) != 5 {
			t.Fatalf("%d offsets, want 5", len(got))
		}
		for i, d := range got {
			if d < 0 || d >= w {
				t.Fatalf("phase %v: offset %d = %v outside [0, %v)", phase, i, d, w)
			}
			if i > 0 && got[i]-got[i-1] != 2*time.Second {
				t.Fatalf("phase %v: offsets %v not 2s apart", phase, got)
			}
		}
		if want := time.Duration(phase * float64(2*time.Second)); got[0] != want {
			t.Fatalf("phase %v: first offset %v, want %v", phase, got[0], want)
		}
	}
	for _, d := range Spread(3, 0, 0.5) {
		if d != 0 {
			t.Fatalf("zero window gave %v", d)
		}
	}
	if len(Spread(0, w, 0.1)) != 0 {
		t.Fatal("offsets for no probes")
	}
}
