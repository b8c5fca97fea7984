package systemd

import (
	"fmt"
	"strings"
	"time"
)

// FeedHealth is what Health needs to know about one feed.
type FeedHealth struct {
	Name     string
	FPS      float64
	Bitrate  float64 // bits per second
	Viewers  int
	LastUnit time.Time // the newest access unit; zero before the first
	Started  time.Time // when the feed started (or was reloaded)
	// Passive feeds wait for someone to send video (source publish,
	// tcp-listen): silence is normal for them, never a wedge.
	Passive bool
}

// DefaultWedgeAfter is how long a feed may go without video before the
// process counts as wedged. It is longer than a source restart with
// backoff usually takes, so the supervisor gets to try first; systemd's
// restart is the last resort.
const DefaultWedgeAfter = 60 * time.Second

// Health turns the feeds' state into what Run needs: whether to pet the
// watchdog, and the STATUS= line. A feed is wedged when it is not passive
// and has had no video for wedgeAfter since it started or since its last
// unit. The summary names each feed: "cam: 30.0 fps, 4.1 Mbit/s, 2
// viewers; door: no video for 1m12s".
func Health(now time.Time, feeds []FeedHealth, wedgeAfter time.Duration) (ok bool, summary string) {
	ok = true
	parts := make([]string, 0, len(feeds))
	for _, f := range feeds {
		since := f.LastUnit
		if since.IsZero() || f.Started.After(since) {
			since = f.Started
		}
		silent := now.Sub(since)
		switch {
		case !f.LastUnit.IsZero() && silent < 2*time.Second:
			parts = append(parts, fmt.Sprintf("%s: %.1f fps, %.1f Mbit/s, %s", f.Name, f.FPS, f.Bitrate/1e6, viewers(f.Viewers)))
		case f.Passive:
			parts = append(parts, fmt.Sprintf("%s: waiting for a publisher", f.Name))
		default:
			if !since.IsZero() && silent >= wedgeAfter {
				ok = false
			}
			parts = append(parts, fmt.Sprintf("%s: no video for %s", f.Name, silent.Truncate(time.Second)))
		}
	}
	if len(parts) == 0 {
		return ok, "no feeds"
	}
	return ok, strings.Join(parts, "; ")
}

func viewers(n int) string {
	if n == 1 {
		return "1 viewer"
	}
	return fmt.Sprintf("%d viewers", n)
}
