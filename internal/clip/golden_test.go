package clip

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	amp4 "github.com/abema/go-mp4"

	"github.com/camfeed/camfeed/internal/h264"
	"github.com/camfeed/camfeed/internal/testsrc"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestGoldenBoxes pins the box layout of a clip that starts inside a GOP:
// ftyp and moov before mdat, the edit list that hides the units before
// the cut, and the durations of mvhd, tkhd, mdhd and elst.
func TestGoldenBoxes(t *testing.T) {
	g, err := testsrc.New(testsrc.Config{Width: 64, Height: 64, FPS: 25, Intra: 25})
	if err != nil {
		t.Fatal(err)
	}
	p := h264.NewParser(h264.ParserConfig{})
	t0 := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	var us []*h264.AccessUnit
	for i := range 60 {
		ts := t0.Add(time.Duration(i) * 40 * time.Millisecond)
		nalus, _ := g.Next(ts)
		p.WriteAU(nalus, ts, func(au *h264.AccessUnit) { us = append(us, au) })
	}
	// The last 1.5 s: from unit 23 (a P frame) to the end.
	c, err := Plan(us, t0.Add(920*time.Millisecond), t0.Add(2400*time.Millisecond), 40*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := c.WriteMP4(&buf, nil); err != nil {
		t.Fatal(err)
	}
	got := dumpBoxes(t, buf.Bytes())
	const golden = "testdata/clip_boxes.golden"
	if *update {
		os.MkdirAll("testdata", 0o755)
		os.WriteFile(golden, []byte(got), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("boxes differ from %s (go test -run Golden -update to accept):\n%s", golden, got)
	}
}

func dumpBoxes(t *testing.T, b []byte) string {
	var sb strings.Builder
	detail := map[string]bool{"mvhd": true, "tkhd": true, "elst": true, "mdhd": true, "stts": true, "stss": true, "stsc": true}
	_, err := amp4.ReadBoxStructure(bytes.NewReader(b), func(h *amp4.ReadHandle) (any, error) {
		typ := h.BoxInfo.Type.String()
		fmt.Fprintf(&sb, "%s%s %d", strings.Repeat("  ", len(h.Path)-1), typ, h.BoxInfo.Size)
		if detail[typ] {
			box, _, err := h.ReadPayload()
			if err != nil {
				return nil, err
			}
			s, err := amp4.Stringify(box, h.BoxInfo.Context)
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(&sb, " %s", s)
		}
		sb.WriteByte('\n')
		if h.BoxInfo.IsSupportedType() && typ != "mdat" && typ != "stsd" {
			return h.Expand()
		}
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sb.String()
}
