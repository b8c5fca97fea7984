package browsertest

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/camfeed/camfeed/internal/testsupport"
)

// Startup is when each step of a viewer page's start happened, in ms
// from navigation start (performance.timeOrigin): the document's own
// timing (responseStart, responseEnd, domLoading, domInteractive,
// domContentLoaded, load), each resource it fetched (NAME.start and
// NAME, its responseEnd), and the player's marks (player.js: script,
// start, session; pcMade, caps, offerMade, offerSent, answered,
// remoteSet, track, iceConnected, connected for WebRTC; wsOpen,
// streamInfo, sourceOpen, initSegment, firstFragment, buffered for MSE;
// loadedmetadata, loadeddata, playing, presented and firstFrame, the
// first requestVideoFrameCallback, for both). StartupOrder lists them in
// order. A step that did not happen is absent.
type Startup map[string]float64

// StartupOrder is the order steps are shown in.
var StartupOrder = []string{
	"responseStart", "responseEnd", "domLoading", "viewer.css.start", "viewer.css", "timecode.js.start", "timecode.js", "player.js.start", "player.js", "page.js.start", "page.js",
	"script", "start", "session", "sessionStarted", "pageDone", "domInteractive", "domContentLoaded", "load",
	"pcMade", "transceiver", "caps", "offerMade", "offerSent", "answered", "remoteSet", "track", "iceConnected", "connected",
	"wsOpen", "streamInfo", "sourceOpen", "initSegment", "firstFragment", "buffered",
	"loadedmetadata", "loadeddata", "playing", "presented", "firstFrame",
}

// FirstPicture opens url (a viewer page) in a new tab, waits for its
// first picture and returns when each step of the start happened. The
// tab is closed before it returns.
func (b *Browser) FirstPicture(url string) (Startup, error) {
	p, err := b.OpenPage(url, 640, 480)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	if err := p.WaitFor(`window.camfeedPlayer && camfeedPlayer.gotFrame && document.readyState === "complete"`, 3*testsupport.Patience); err != nil {
		return nil, fmt.Errorf("%w; console: %s", err, strings.Join(p.Console(), " | "))
	}
	ctx, cancel := context.WithTimeout(context.Background(), testsupport.Patience)
	defer cancel()
	var st Startup
	err = p.Eval(ctx, `(() => {
		const n = performance.getEntriesByType("navigation")[0], pl = camfeedPlayer, out = Object.assign({}, pl.marks || {});
		// A player without marks (before they were added) has its first frame.
		if (out.firstFrame === undefined) out.firstFrame = pl.startedAt + pl.firstFrameMs;
		out.domLoading = performance.timing.domLoading - performance.timing.navigationStart;
		out.responseStart = n.responseStart;
		out.responseEnd = n.responseEnd;
		out.domInteractive = n.domInteractive;
		out.domContentLoaded = n.domContentLoadedEventStart;
		out.load = n.loadEventStart;
		performance.getEntriesByType("resource").forEach(r => { out[r.name.replace(/.*\//, "") + ".start"] = r.startTime; out[r.name.replace(/.*\//, "")] = r.responseEnd; });
		return out;
	})()`, &st)
	if err != nil {
		return nil, err
	}
	// Hang up before the tab closes, as a page that is left does, so the
	// next start is not measured against this one's stream.
	_ = p.Eval(ctx, `camfeedPlayer.stop()`, nil)
	return st, nil
}

// StartupTable formats runs of one protocol as a table: each step's
// median, min and max over the runs, in ms from navigation start.
func StartupTable(runs []Startup) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%-18s %8s %8s %8s  (%d runs, ms from navigation start)\n", "step", "median", "min", "max", len(runs))
	for _, step := range StartupOrder {
		var v []float64
		for _, r := range runs {
			if x, ok := r[step]; ok && x > 0 {
				v = append(v, x)
			}
		}
		if len(v) == 0 {
			continue
		}
		slices.Sort(v)
		fmt.Fprintf(&sb, "%-18s %8.1f %8.1f %8.1f\n", step, Median(v), v[0], v[len(v)-1])
	}
	return sb.String()
}

// Median returns the median of sorted values (NaN when there are none).
func Median(sorted []float64) float64 {
	n := len(sorted)
	switch {
	case n == 0:
		return math.NaN()
	case n%2 == 1:
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}
