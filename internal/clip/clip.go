// Package clip turns what a feed's RAM ring holds into MP4 clips: the last
// N seconds at once, optionally with the next M seconds, downloaded
// (GET /{feed}/clip.mp4) or saved to disk for event triggers
// (POST /api/v1/feeds/{feed}/clips). Nothing touches the SD card until a
// clip is saved, and a download never copies the video: the MP4 is
// streamed from the shared access units (see Clip.WriteMP4).
package clip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/camfeed/camfeed/internal/door"
	"github.com/camfeed/camfeed/internal/h264"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/mediatime"
	"github.com/camfeed/camfeed/internal/origin"
	"github.com/camfeed/camfeed/internal/route"
)

// Feeds gives the clip server the feeds' hubs.
type Feeds interface {
	Hub(name string) (*hub.Hub, bool)
	Names() []string
}

// Defaults for zero Config fields.
const (
	DefaultSeconds       = 10 * time.Second
	DefaultMaxSaved      = 100
	DefaultMaxConcurrent = 16
	DefaultMaxPerFeed    = 8
	DefaultMaxPerUser    = 4
	DefaultMaxSaving     = 8
	DefaultKeepFor       = time.Minute
	DefaultMaxAfter      = time.Minute
	DefaultMinFree       = 256 << 20
	// MaxSeconds caps seconds=; a clip never holds more than the pre-roll
	// window anyway.
	MaxSeconds = time.Hour
)

// defaultStallGrace is how long an after= clip waits past its end for a
// feed that went quiet before it gives up and returns what it has.
const defaultStallGrace = 5 * time.Second

// estimateOver is the least span over which a clip's frame interval is
// measured, from the units the feed holds.
const estimateOver = 20 * time.Second

// Config sets up clips.
type Config struct {
	// Dir is where saved clips go, one directory per feed; "" disables
	// saving (downloads still work).
	Dir string
	// MaxSaved is how many saved clips a feed keeps; the oldest go first.
	MaxSaved int
	// MaxConcurrent bounds clip downloads being made or sent at once,
	// over all feeds. A request beyond it gets 503 with Retry-After.
	MaxConcurrent int
	// MaxPerFeed bounds the downloads of one feed at once (503), so that
	// one feed's viewers cannot take every other feed's clips.
	MaxPerFeed int
	// MaxPerUser bounds one user's downloads at once (429); an anonymous
	// client is counted by its address. A reader of one feed cannot hold
	// every slot with after= clips.
	MaxPerUser int
	// MaxSaving bounds clips being saved at once (POST, 503 beyond).
	// Downloads never count against it, nor saves against downloads: a
	// reader hogging downloads cannot make an event clip be lost.
	MaxSaving int
	// KeepFor protects new saved clips: a save that would, once MaxSaved
	// is reached, delete a clip saved less than KeepFor ago is refused
	// (429) rather than lose an event clip to a burst of saves. Negative
	// turns the protection off.
	KeepFor time.Duration
	// AllowedOrigins are the other sites (allowed_origins) whose pages may
	// save and delete clips; see internal/origin. Other cross-origin
	// POST and DELETE requests are refused with 403.
	AllowedOrigins []string
	// Who names the client a download counts against for MaxPerUser;
	// nil: the authenticated user, else the client's address.
	Who func(*http.Request) string
	// MaxAfter bounds after=: the units of a clip being waited for are
	// held in memory, even once the ring has dropped them.
	MaxAfter time.Duration
	// MinFree is the free space under which saving is refused (507).
	MinFree int64
	// Door admits and accounts downloads, like every viewer (nil: a door
	// with no limits over the feeds given to New).
	Door *door.Door
}

func (c *Config) setDefaults() {
	if c.MaxSaved <= 0 {
		c.MaxSaved = DefaultMaxSaved
	}
	if c.MaxConcurrent <= 0 {
		c.MaxConcurrent = DefaultMaxConcurrent
	}
	if c.MaxPerFeed <= 0 {
		c.MaxPerFeed = DefaultMaxPerFeed
	}
	if c.MaxPerUser <= 0 {
		c.MaxPerUser = DefaultMaxPerUser
	}
	if c.MaxSaving <= 0 {
		c.MaxSaving = DefaultMaxSaving
	}
	if c.KeepFor == 0 {
		c.KeepFor = DefaultKeepFor
	}
	if c.Who == nil {
		c.Who = who
	}
	if c.MaxAfter <= 0 {
		c.MaxAfter = DefaultMaxAfter
	}
	if c.MinFree <= 0 {
		c.MinFree = DefaultMinFree
	}
}

// Server serves and saves clips.
type Server struct {
	cfg   Config
	feeds Feeds
	door  *door.Door
	log   *slog.Logger
	slots *slots
	orig  *origin.Checker
	free  func(dir string) (int64, error) // free bytes; tests replace it
	grace time.Duration                   // see defaultStallGrace

	ctx    context.Context // ends background saves on Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	saveMu sync.Mutex // naming and pruning saved clips
}

// New returns a clip server. Leftovers of saves cut short by a crash
// (*.part files) are deleted.
func New(cfg Config, feeds Feeds, log *slog.Logger) *Server {
	cfg.setDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg: cfg, feeds: feeds, log: log, door: cfg.Door,
		slots: newSlots(cfg), orig: origin.New(cfg.AllowedOrigins), free: diskFree, grace: defaultStallGrace,
		ctx: ctx, cancel: cancel,
	}
	if s.door == nil {
		s.door = door.Unlimited(feeds)
	}
	if cfg.Dir != "" {
		s.removeParts()
	}
	return s
}

// Register adds the clip routes to mux. The lead wraps the API routes with
// permission checks (docs/CLIPS.md lists them).
func (s *Server) Register(mux *route.Mux) {
	mux.HandleFunc("GET /{feed}/clip.mp4", route.Read, s.handleDownload)
	mux.HandleFunc("POST /api/v1/feeds/{feed}/clips", route.Publish, s.handleSave)
	mux.HandleFunc("GET /api/v1/feeds/{feed}/clips", route.Read, s.handleList)
	mux.HandleFunc("GET /api/v1/feeds/{feed}/clips/{name}", route.Read, s.handleGetSaved)
	mux.HandleFunc("DELETE /api/v1/feeds/{feed}/clips/{name}", route.Admin, s.handleDelete)
}

// Close stops background saves (after= clips still being waited for) and
// waits for them: a save cut short leaves no file.
func (s *Server) Close() {
	s.cancel()
	s.wg.Wait()
}

// request is what a client asks for: seconds before now, after it.
type request struct {
	seconds, after time.Duration
}

// Errors for bad parameters; their text is sent to the client.
var (
	errSeconds = fmt.Errorf("seconds must be a number above 0 and at most %d", int(MaxSeconds/time.Second))
	errBusy    = &busyError{"clip: too many clips at once, retry in a second", http.StatusServiceUnavailable}
)

func (s *Server) parseRequest(q url.Values) (request, error) {
	req := request{seconds: DefaultSeconds}
	if v := q.Get("seconds"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || !(f > 0) || f > MaxSeconds.Seconds() {
			return req, errSeconds
		}
		req.seconds = time.Duration(f * float64(time.Second))
	}
	if v := q.Get("after"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || !(f >= 0) || f > s.cfg.MaxAfter.Seconds() {
			return req, fmt.Errorf("after must be a number from 0 to %g", s.cfg.MaxAfter.Seconds())
		}
		req.after = time.Duration(f * float64(time.Second))
	}
	return req, nil
}

// pending is a clip whose start is fixed and whose end may be still to
// come (after=).
type pending struct {
	units    []*h264.AccessUnit
	from, to time.Time
	frame    time.Duration
	sub      *hub.Sub
	caught   bool   // the sub has passed the last of units
	sps, pps []byte // the parameter sets of the clip's stream
}

// start fixes a clip's range at the newest unit. For after= it first
// joins the feed, so that nothing published between the look at the ring
// and the wait for what follows is missed: through sub when given (a
// download's, from the door), else with a cursor of its own (a save).
func start(h *hub.Hub, req request, sub *hub.Sub) (*pending, error) {
	p := &pending{}
	var joined *h264.AccessUnit
	if req.after > 0 {
		if sub == nil {
			join := hub.JoinKeyframe
			// A clip only collects pointers, so it never lags in practice;
			// the budget is generous so that it is never skipped anyway.
			sub = h.Subscribe(hub.SubOptions{Output: "clip", Join: &join, LagBudget: req.after + time.Minute})
		}
		p.sub = sub
		f, ok, err := p.sub.TryNext()
		if err != nil || !ok {
			p.sub.Close()
			return nil, ErrNoVideo
		}
		joined = f.AccessUnit
	}
	_, newest := h.Latest()
	if newest == nil {
		p.close()
		return nil, ErrNoVideo
	}
	p.units = h.Since(newest.Received.Add(-req.seconds))
	if len(p.units) == 0 {
		p.close()
		return nil, ErrNoVideo
	}
	// Across a change of picture size only the newest part is kept (Plan
	// marks the clip truncated, since it then starts late); what follows
	// for after= must match it.
	p.units, _ = lastParamsRun(p.units)
	for i := len(p.units) - 1; i >= 0; i-- {
		if p.units[i].Keyframe {
			p.sps, p.pps = paramSets(p.units[i])
			break
		}
	}
	// The frame interval is measured over more than a short clip holds:
	// the longer the run, the closer (mediatime.Estimate).
	p.frame = mediatime.Estimate(h.Since(newest.Received.Add(-max(req.seconds, estimateOver))), h.Params().Info.FPS)
	last := p.units[len(p.units)-1].Received
	p.to = last.Add(p.frame + req.after)
	p.from = p.to.Add(-(req.seconds + req.after))
	p.caught = joined == p.units[len(p.units)-1]
	return p, nil
}

func (p *pending) close() {
	if p.sub != nil {
		p.sub.Close()
	}
}

// finish waits for the rest of an after= clip, then plans it. A feed that
// goes quiet (or closes) ends the wait grace after the clip's end, with
// what came.
func (p *pending) finish(ctx context.Context, grace time.Duration) (*Clip, error) {
	defer p.close()
	short := false
	if p.sub != nil {
		wait, cancel := context.WithDeadline(ctx, p.to.Add(grace))
		defer cancel()
		end := p.to.Add(-p.frame / 2)
		for {
			f, err := p.sub.Next(wait)
			if err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				short = true
				break
			}
			if !p.caught {
				// The sub starts at the keyframe it joined on, which units
				// already hold, with what followed it.
				last := p.units[len(p.units)-1]
				p.caught = f.AccessUnit == last || f.Received.After(last.Received)
				if !p.caught || f.AccessUnit == last {
					continue
				}
			}
			if f.Skipped {
				// The source restarted (perhaps in another mode) or the
				// hub skipped this viewer: what follows does not belong
				// to this clip's timeline.
				short = true
				break
			}
			if !f.Received.Before(end) {
				break // the first unit past the end
			}
			if f.Keyframe && !sameParams(f.AccessUnit, p.sps, p.pps) {
				// A new picture size: one MP4 track cannot change it.
				short = true
				break
			}
			p.units = append(p.units, f.AccessUnit)
		}
	}
	c, err := Plan(p.units, p.from, p.to, p.frame)
	if err != nil {
		return nil, err
	}
	if short {
		c.Truncated = true
	}
	return c, nil
}

// filename is the Content-Disposition name of a clip: feed and start time.
func filename(feed string, t time.Time) string {
	return feed + "-" + t.UTC().Format("20060102-150405Z") + ".mp4"
}

func clipHeaders(hd http.Header, c *Clip) {
	hd.Set("X-Camfeed-Clip-Seconds", strconv.FormatFloat(c.Duration.Seconds(), 'f', 3, 64))
	hd.Set("X-Camfeed-Clip-Truncated", strconv.FormatBool(c.Truncated))
	hd.Set("X-Camfeed-Clip-Start", c.Start.UTC().Format(time.RFC3339Nano))
}

func httpError(w http.ResponseWriter, err error) {
	var busy *busyError
	switch {
	case errors.Is(err, ErrNoVideo):
		http.Error(w, "no video yet: the feed has not sent a keyframe", http.StatusServiceUnavailable)
	case errors.As(err, &busy):
		w.Header().Set("Retry-After", "1")
		http.Error(w, err.Error(), busy.code)
	default:
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}
