// Package record writes a feed to disk continuously, as fragmented MP4
// segments of a set length, within hard bounds: total size, age, and the
// free space it leaves. The oldest segments go first. It lists segments
// and exports a time range as one file, concatenated without re-encoding.
//
// Power loss. A segment is written as START.mp4.part, one fragment (moof
// and mdat, a GOP) at a time, so whatever reached the disk is playable up
// to its last whole fragment. On close it is synced and renamed to
// START_SECONDSs.mp4; only such names are listed. At the next start every
// .part file is cut back to its last whole fragment and renamed, or
// deleted when it holds none: no listed file is unplayable.
//
// A recorder is a hub viewer like any other, so it never blocks the
// camera: a recorder that falls behind (a slow SD card) is skipped to a
// keyframe by the hub, and starts a new segment there.
package record

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/camfeed/camfeed/internal/hub"
)

// Defaults for zero Config fields.
const (
	DefaultSegment  = time.Minute
	DefaultMaxBytes = 1 << 30
	DefaultMaxAge   = 7 * 24 * time.Hour
	DefaultMinFree  = 512 << 20
	// DefaultMaxExport is the longest span one export may ask for.
	DefaultMaxExport = 10 * time.Minute
)

// Internal limits.
const (
	// maxFragment bounds a fragment, and so what a power cut can lose and
	// what is held in memory, when keyframes are far apart.
	maxFragment = 4 * time.Second
	// idleClose ends the segment when the feed sends nothing for this
	// long, so that a stalled camera leaves a complete, listed file.
	idleClose = 3 * time.Second
	// lagBudget is the recorder's lag budget as a viewer: a recorder is
	// skipped only when the ring drops what it has not yet written.
	lagBudget = time.Hour
)

// Config sets up recording.
type Config struct {
	// Dir is the recordings directory; a feed records into Dir/FEED.
	Dir string
	// WriteTimeout bounds each write of a segment or export to a client
	// (limits.write_timeout; 0: none).
	WriteTimeout time.Duration
	// Segment is the length of a segment; it is cut at the first keyframe
	// after it (default 1 min).
	Segment time.Duration
	// MaxBytes bounds the feed's recordings on disk, the segment being
	// written included (default 1 GiB).
	MaxBytes int64
	// MaxAge deletes segments that ended longer ago (default 7 days).
	MaxAge time.Duration
	// MinFree is the free space recording never goes under: it pauses,
	// says why in Status and the log, and resumes once space is back
	// (default 512 MiB).
	MinFree int64
	// MaxExport is the longest span one export request may ask for
	// (limits.max_export, default 10 min): an export is read from disk
	// and sent whole, so an unbounded one (seconds=1e9) sent the entire
	// archive in one response.
	MaxExport time.Duration
}

func (c *Config) setDefaults() {
	if c.Segment <= 0 {
		c.Segment = DefaultSegment
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.MaxAge <= 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.MinFree <= 0 {
		c.MinFree = DefaultMinFree
	}
	if c.MaxExport <= 0 {
		c.MaxExport = DefaultMaxExport
	}
}

// State says what a recorder is doing.
type State string

// States.
const (
	StateStarting  State = "starting"
	StateWaiting   State = "waiting"   // for the feed's next keyframe
	StateRecording State = "recording" // writing a segment
	StatePaused    State = "paused"    // not writing: see Reason
	StateStopped   State = "stopped"   // Run returned
)

// ErrDiskFull is the reason for a pause when free space fell under MinFree.
var ErrDiskFull = errors.New("record: free space is under the minimum")

// Status describes a recorder, for the API and the status page.
type Status struct {
	State  State  `json:"state"`
	Reason string `json:"reason,omitempty"`
	// Segments and Bytes count what is on disk, the current segment
	// included.
	Segments int       `json:"segments"`
	Bytes    int64     `json:"bytes"`
	MaxBytes int64     `json:"max_bytes"`
	Oldest   time.Time `json:"oldest,omitzero"`
	// Deleted counts segments deleted for size or age since start.
	Deleted uint64 `json:"deleted"`
	// Dropped counts fragments not written (disk full, write errors).
	Dropped uint64 `json:"dropped"`
}

// Recorder records one feed.
type Recorder struct {
	cfg   Config
	feed  string
	h     *hub.Hub
	log   *slog.Logger
	dir   string
	free  func(dir string) (int64, error) // free bytes; tests replace it
	retry time.Duration                   // see retryEvery

	mu      sync.Mutex
	segs    []Segment // finished, oldest first
	cur     *segment  // being written, or nil
	state   State
	reason  string
	deleted uint64
	dropped uint64

	exports chan struct{} // bounds concurrent exports
}

// New returns a recorder of feed h into cfg.Dir/feed. Nothing happens
// until Run.
func New(cfg Config, feed string, h *hub.Hub, log *slog.Logger) *Recorder {
	cfg.setDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Recorder{
		cfg: cfg, feed: feed, h: h, log: log.With("feed", feed),
		dir: filepath.Join(cfg.Dir, feed), free: diskFree, retry: retryEvery,
		state: StateStarting, exports: make(chan struct{}, 2),
	}
}

// Run records until ctx ends, then closes the segment being written and
// returns ctx.Err(). It returns at once with an error when the directory
// cannot be made or read. Disk trouble while recording does not end it:
// it pauses and retries, and Status says why.
func (r *Recorder) Run(ctx context.Context) error {
	if r.cfg.Dir == "" {
		r.setState(StateStopped, "no recordings directory set")
		return errors.New("record: no recordings directory set")
	}
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		r.setState(StateStopped, err.Error())
		return fmt.Errorf("record: %w", err)
	}
	if err := r.recover(); err != nil {
		r.setState(StateStopped, err.Error())
		return fmt.Errorf("record: %w", err)
	}
	r.setState(StateWaiting, "")
	join := hub.JoinKeyframe
	sub := r.h.Subscribe(hub.SubOptions{Output: "record", Join: &join, LagBudget: lagBudget})
	defer sub.Close()
	w := &writer{r: r}
	defer func() {
		w.finish(nil)
		r.setState(StateStopped, "")
	}()
	for {
		next, cancel := context.WithTimeout(ctx, idleClose)
		f, err := sub.Next(next)
		cancel()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded):
			w.finish(nil) // the feed stalled: close the segment
			if r.Status().State == StateRecording {
				r.setState(StateWaiting, "")
			}
			continue
		case errors.Is(err, hub.ErrClosed):
			w.finish(nil)
			<-ctx.Done()
			return ctx.Err()
		case err != nil:
			return err
		}
		w.unit(f)
	}
}

func (r *Recorder) setState(s State, reason string) {
	r.mu.Lock()
	r.state, r.reason = s, reason
	r.mu.Unlock()
}

// Status returns what the recorder is doing and what it holds.
func (r *Recorder) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := Status{
		State: r.state, Reason: r.reason, Segments: len(r.segs), Bytes: r.totalLocked(),
		MaxBytes: r.cfg.MaxBytes, Deleted: r.deleted, Dropped: r.dropped,
	}
	if len(r.segs) > 0 {
		st.Oldest = r.segs[0].Start
	} else if r.cur != nil {
		st.Oldest = r.cur.start
	}
	if r.cur != nil {
		st.Segments++
	}
	return st
}
