package checks

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestStatusPageCountsInWords(t *testing.T) {
	for n, want := range map[int]string{0: "0 checks, as of", 1: "1 check, as of", 3: "3 checks, as of"} {
		var b bytes.Buffer
		if err := writePage(&b, pageView{Total: n, Now: time.Unix(0, 0).UTC()}); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), "<p>"+want) {
			t.Errorf("%d checks: page lacks %q", n, want)
		}
	}
}
