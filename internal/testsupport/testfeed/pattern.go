package testfeed

import (
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/h264"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/testsrc"
)

// Pattern makes n access units of the test pattern at once, as the parser
// gives them to the hub (the first is a keyframe with SPS and PPS), and
// the feed's parameters, for tests that drive an output's writer directly.
// Capture and receive times advance by one frame period per unit.
func Pattern(t testing.TB, cfg testsrc.Config, n int) ([]*h264.AccessUnit, hub.Params) {
	t.Helper()
	g, err := testsrc.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	period := time.Second / time.Duration(g.Config().FPS)
	p := h264.NewParser(h264.ParserConfig{StampIngest: true})
	units := make([]*h264.AccessUnit, 0, n)
	now := time.Now()
	for i := 0; len(units) < n; i++ {
		at := now.Add(time.Duration(i) * period)
		nalus, _ := g.Next(at)
		p.WriteAU(nalus, at, func(au *h264.AccessUnit) { units = append(units, au) })
	}
	params := hub.Params{SPS: g.SPS(), PPS: g.PPS()}
	params.Info, err = h264.ParseSPS(params.SPS)
	if err != nil {
		t.Fatal(err)
	}
	return units, params
}
