// Package api serves the JSON status API and the health check.
package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/camfeed/camfeed/internal/door"
	"github.com/camfeed/camfeed/internal/feed"
	"github.com/camfeed/camfeed/internal/pihealth"
	"github.com/camfeed/camfeed/internal/route"
)

// Feeds lists the running feeds.
type Feeds interface {
	Feeds() []*feed.Feed
}

// HealthWindow is how recent a feed's last access unit must be for /healthz.
const HealthWindow = 2 * time.Second

// Keyframe age bounds for /healthz. A feed is healthy only when a viewer
// joining now would get a picture: a new viewer starts at the newest
// keyframe, so a source that sent one keyframe and then only P-frames (or
// frames nothing can decode from) is not healthy however many frames it
// sends. The newest keyframe may be DefaultKeyframeAge old, or three of
// the feed's GOPs for a camera with long GOPs, but never more than
// MaxKeyframeAge.
const (
	DefaultKeyframeAge = 10 * time.Second
	MaxKeyframeAge     = time.Minute
)

// FeedStatus is one feed in GET /api/v1/status.
type FeedStatus struct {
	Name       string    `json:"name"`
	Source     string    `json:"source"`
	State      string    `json:"state"`
	StateSince time.Time `json:"state_since"`
	Width      int       `json:"width"`
	Height     int       `json:"height"`
	Profile    string    `json:"profile,omitempty"`
	Level      string    `json:"level,omitempty"`
	FPS        float64   `json:"fps"`
	Bitrate    float64   `json:"bitrate"`
	GOP        int       `json:"gop"`
	// Viewers counts the feed's open sessions in the door by protocol;
	// Sessions lists them, with the same fields for every protocol.
	Viewers     map[string]int `json:"viewers"`
	ViewerCount int            `json:"viewer_count"`
	Sessions    []door.Info    `json:"sessions"`
	BytesIn     uint64         `json:"bytes_in"`
	BytesOut    uint64         `json:"bytes_out"`
	Frames      uint64         `json:"frames"`
	Keyframes   uint64         `json:"keyframes"`
	Skips       uint64         `json:"skips"`
	Restarts    int            `json:"restarts"`
	LastError   string         `json:"last_error,omitempty"`
	LastErrorAt *time.Time     `json:"last_error_at,omitempty"`
	LastFrame   *time.Time     `json:"last_frame,omitempty"`
	Buffer      BufferStatus   `json:"buffer"`
	Damage      DamageStatus   `json:"input_damage"`
	// CameraDropped counts the frames the camera itself dropped since
	// start, from rpicam-vid's sensor timestamps; nil (left out) where
	// there are none: other sources, the libav encoder of a Pi 5.
	CameraDropped *uint64 `json:"camera_frames_dropped,omitempty"`
	// Extra holds per-output details (RTSP sessions, ...) added by outputs.
	Extra map[string]any `json:"extra,omitempty"`
}

// BufferStatus is the RAM ring's use.
type BufferStatus struct {
	Bytes      int     `json:"bytes"`
	Budget     int     `json:"budget_bytes"`
	Frames     int     `json:"frames"`
	Seconds    float64 `json:"seconds"`
	GOPOverrun uint64  `json:"gop_overruns"`
}

// DamageStatus counts what the parser had to drop from the input.
type DamageStatus struct {
	GarbageBytes uint64 `json:"garbage_bytes"`
	BadNALUs     uint64 `json:"bad_nal_units"`
	Oversized    uint64 `json:"oversized"`
	Dropped      uint64 `json:"frames_dropped"`
}

// cameraDrops is a source that counts the frames its camera dropped
// (source.RPiCam); ok is false when it has no figure.
type cameraDrops interface {
	CameraDrops() (n uint64, ok bool)
}

// Status builds the status of every feed; d, when set, gives the viewers.
func Status(fs []*feed.Feed, d *door.Door, extra func(feed string) map[string]any) []FeedStatus {
	out := make([]FeedStatus, 0, len(fs))
	for _, f := range fs {
		st := f.Status()
		hs := f.Hub().Stats()
		p := f.Hub().Params()
		cfg := f.Hub().Config()
		fsx := FeedStatus{
			Name: st.Name, Source: st.Source, State: string(st.State), StateSince: st.StateSince,
			Width: p.Info.Width, Height: p.Info.Height, FPS: round(hs.FPS, 2), Bitrate: round(hs.Bitrate, 0), GOP: hs.GOP,
			Viewers: hs.Viewers, ViewerCount: hs.ViewersTotal, BytesIn: hs.BytesIn, BytesOut: hs.BytesOut,
			Frames: hs.Units, Keyframes: hs.Keyframes, Skips: hs.Skips, Restarts: st.Restarts, LastError: st.LastError,
			Buffer: BufferStatus{Bytes: hs.BufferedBytes, Budget: cfg.MaxBytes, Frames: hs.BufferedUnits, Seconds: round(hs.Buffered.Seconds(), 2), GOPOverrun: hs.GOPOverflows},
			Damage: DamageStatus{GarbageBytes: st.Parser.GarbageBytes, BadNALUs: st.Parser.BadNALUs, Oversized: st.Parser.Oversized, Dropped: st.Parser.Dropped},
		}
		if c, ok := f.Source().(cameraDrops); ok {
			if n, ok := c.CameraDrops(); ok {
				fsx.CameraDropped = &n
			}
		}
		if d != nil {
			fsx.Viewers, fsx.Sessions = d.Count(f.Name()), d.Sessions(f.Name())
			fsx.ViewerCount = len(fsx.Sessions)
		}
		if p.Gen > 0 {
			fsx.Profile, fsx.Level = p.Info.ProfileName(), p.Info.Level()
		}
		if !st.LastErrAt.IsZero() {
			t := st.LastErrAt
			fsx.LastErrorAt = &t
		}
		if !st.LastUnit.IsZero() {
			t := st.LastUnit
			fsx.LastFrame = &t
		}
		if extra != nil {
			fsx.Extra = extra(f.Name())
		}
		out = append(out, fsx)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func round(v float64, digits int) float64 {
	p := 1.0
	for range digits {
		p *= 10
	}
	return float64(int64(v*p+0.5)) / p
}

// Handlers serves /healthz and /api/v1/status.
type Handlers struct {
	Feeds   Feeds
	Version string
	Started time.Time
	// Door, if set, gives the viewers of each feed.
	Door *door.Door
	// Extra adds per-output details to a feed's status (may be nil).
	Extra func(feed string) map[string]any
	// KeyframeAge overrides DefaultKeyframeAge (tests).
	KeyframeAge time.Duration
	// Pi, if set, gives the Raspberry Pi's health (SoC temperature,
	// throttling flags); a nil reading leaves "pi" out.
	Pi func() *pihealth.Reading
}

// Register mounts the handlers.
func (h *Handlers) Register(mux *route.Mux) {
	mux.HandleFunc("GET /healthz", route.Public, h.health)
	mux.HandleFunc("GET /api/v1/status", route.ReadAll, h.status)
}

// Healthy reports whether a new viewer of every feed would get a picture
// now: the feed delivered an access unit within HealthWindow, and its hub
// holds a keyframe no older than DefaultKeyframeAge (see the constants).
// If not, it says why, in words.
func Healthy(fs []*feed.Feed, now time.Time) (bool, string) {
	return HealthyWithin(fs, now, DefaultKeyframeAge)
}

// HealthyWithin is Healthy with another keyframe age bound.
func HealthyWithin(fs []*feed.Feed, now time.Time, keyframeAge time.Duration) (bool, string) {
	var problems []string
	for _, f := range fs {
		st := f.Status()
		if !st.LastUnit.IsZero() && now.Sub(st.LastUnit) <= HealthWindow {
			if why := keyframeProblem(f, now, keyframeAge); why != "" {
				problems = append(problems, fmt.Sprintf("feed %s: %s (source %s)", st.Name, why, st.Source))
			}
			continue
		}
		why := fmt.Sprintf("feed %s: no video", st.Name)
		if !st.LastUnit.IsZero() {
			why += fmt.Sprintf(" for %s", now.Sub(st.LastUnit).Round(100*time.Millisecond))
		} else {
			why += " yet"
		}
		state := string(st.State)
		if st.State == feed.StateBackoff {
			state = "in backoff" // waiting to try again
		}
		why += fmt.Sprintf(" (source %s is %s", st.Source, state)
		if st.LastError != "" {
			why += ": " + st.LastError
		}
		problems = append(problems, why+")")
	}
	if len(problems) == 0 {
		if len(fs) == 1 {
			return true, "1 feed ok"
		}
		return true, fmt.Sprintf("%d feeds ok", len(fs))
	}
	return false, strings.Join(problems, "; ")
}

// keyframeProblem says why a new viewer of f would get no picture, or "".
func keyframeProblem(f *feed.Feed, now time.Time, bound time.Duration) string {
	key, _ := f.Hub().Latest()
	if key == nil {
		return "frames arrive but no keyframe is held: new viewers get no picture"
	}
	st := f.Hub().Stats()
	if st.GOP > 0 && st.FPS > 0 {
		gop := time.Duration(float64(st.GOP) / st.FPS * float64(time.Second))
		bound = max(bound, 3*gop)
	}
	bound = min(bound, MaxKeyframeAge)
	if age := now.Sub(key.Received); age > bound {
		return fmt.Sprintf("no keyframe for %s (at most %s): new viewers get no picture", age.Round(100*time.Millisecond), bound.Round(100*time.Millisecond))
	}
	return ""
}

func (h *Handlers) health(w http.ResponseWriter, r *http.Request) {
	age := h.KeyframeAge
	if age <= 0 {
		age = DefaultKeyframeAge
	}
	ok, why := HealthyWithin(h.Feeds.Feeds(), time.Now(), age)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	fmt.Fprintln(w, why)
}

func (h *Handlers) status(w http.ResponseWriter, r *http.Request) {
	body := struct {
		Version string            `json:"version"`
		Uptime  float64           `json:"uptime_seconds"`
		Pi      *pihealth.Reading `json:"pi,omitempty"`
		Feeds   []FeedStatus      `json:"feeds"`
	}{Version: h.Version, Uptime: round(time.Since(h.Started).Seconds(), 1), Feeds: Status(h.Feeds.Feeds(), h.Door, h.Extra)}
	if h.Pi != nil {
		body.Pi = h.Pi()
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(body)
}
