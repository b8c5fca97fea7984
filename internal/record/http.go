package record

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"

	"github.com/camfeed/camfeed/internal/limits"
	"github.com/camfeed/camfeed/internal/mediatime"
	"github.com/camfeed/camfeed/internal/route"
)

// Register adds the feed's recording routes to mux. Each recorder adds
// its own feed's paths (the feed name is literal in the pattern, so
// several recorders share one mux):
//
//	GET /api/v1/feeds/FEED/recordings          list and status
//	GET /api/v1/feeds/FEED/recordings/export   ?from=&to= or ?seconds=
//	GET /api/v1/feeds/FEED/recordings/{name}   one segment (Range works)
func (r *Recorder) Register(mux *route.Mux) {
	base := "/api/v1/feeds/" + url.PathEscape(r.feed) + "/recordings"
	mux.HandleFunc("GET "+base, r.access(), r.handleList)
	mux.HandleFunc("GET "+base+"/export", r.access(), r.handleExport)
	mux.HandleFunc("GET "+base+"/{name}", r.access(), r.handleSegment)
}

func (r *Recorder) url(name string) string {
	return "/api/v1/feeds/" + url.PathEscape(r.feed) + "/recordings/" + name
}

// listedSegment is a Segment as the API lists it.
type listedSegment struct {
	Segment
	URL string `json:"url"`
}

// current is the segment being written, as listed.
type current struct {
	Start   time.Time `json:"start"`
	Seconds float64   `json:"seconds"`
	Bytes   int64     `json:"bytes"`
}

func (r *Recorder) handleList(w http.ResponseWriter, _ *http.Request) {
	st := r.Status()
	r.mu.Lock()
	list := make([]listedSegment, len(r.segs))
	for i, s := range r.segs {
		list[i] = listedSegment{s, r.url(s.Name)}
	}
	var cur *current
	if r.cur != nil {
		cur = &current{r.cur.start, float64(r.cur.ticks) / mediatime.Timescale, r.cur.complete}
	}
	r.mu.Unlock()
	writeJSON(w, http.StatusOK, struct {
		Feed      string          `json:"feed"`
		Status    Status          `json:"status"`
		Segments  []listedSegment `json:"segments"`
		Recording *current        `json:"recording"`
	}{r.feed, st, list, cur})
}

func (r *Recorder) handleSegment(w http.ResponseWriter, req *http.Request) {
	w = limits.DeadlineWriter(w, r.cfg.WriteTimeout)
	name := req.PathValue("name")
	if _, ok := parseSegment(name); !ok {
		http.NotFound(w, req)
		return
	}
	f, err := os.Open(filepath.Join(r.dir, name))
	if err != nil {
		http.NotFound(w, req)
		return
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		http.NotFound(w, req)
		return
	}
	w.Header().Set("Content-Type", "video/mp4")
	w.Header().Set("Content-Disposition", `attachment; filename="`+r.feed+"-"+name+`"`)
	http.ServeContent(w, req, "", info.ModTime(), f)
}

// source is a segment file to export from.
type source struct {
	path  string
	start time.Time
	limit int64 // bytes to read: whole fragments only
	alt   string
}

// parseRange reads from/to (RFC 3339 or Unix seconds) or seconds (the
// last N seconds), spanning at most maxSpan.
func parseRange(q url.Values, now time.Time, maxSpan time.Duration) (from, to time.Time, err error) {
	parse := func(v string) (time.Time, error) {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			return t, nil
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 {
			return time.Time{}, errors.New("from and to must be RFC 3339 times or Unix seconds")
		}
		return time.Unix(0, int64(f*1e9)), nil
	}
	to = now
	if v := q.Get("to"); v != "" {
		if to, err = parse(v); err != nil {
			return
		}
	}
	switch {
	case q.Get("from") != "":
		if from, err = parse(q.Get("from")); err != nil {
			return
		}
	case q.Get("seconds") != "":
		f, perr := strconv.ParseFloat(q.Get("seconds"), 64)
		if perr != nil || !(f > 0) {
			return from, to, errors.New("seconds must be a number above 0")
		}
		if f > maxSpan.Seconds() {
			return from, to, spanError(maxSpan)
		}
		from = to.Add(-time.Duration(f * float64(time.Second)))
	default:
		return from, to, errors.New("give from (and to), or seconds")
	}
	if !from.Before(to) {
		return from, to, errors.New("from must be before to")
	}
	if to.Sub(from) > maxSpan {
		return from, to, spanError(maxSpan)
	}
	return from, to, nil
}

func spanError(maxSpan time.Duration) error {
	return fmt.Errorf("an export may span at most %s (%g seconds); ask for several", maxSpan, maxSpan.Seconds())
}

// handleExport sends [from, to) as one fragmented MP4: the init of the
// first segment, then the fragments of every segment in range, as they
// are on disk (no re-encoding), with their sequence numbers and decode
// times rewritten to run on from the first. It starts at the last
// keyframe at or before from, so it may begin up to a GOP early, and a
// gap in the recording stays a gap in the timeline. Segments whose
// parameter sets differ (the camera changed mode) cannot share one init:
// the export ends before the first of them, and X-Camfeed-Export-Truncated
// says so.
func (r *Recorder) handleExport(w http.ResponseWriter, req *http.Request) {
	w = limits.DeadlineWriter(w, r.cfg.WriteTimeout)
	from, to, err := parseRange(req.URL.Query(), time.Now(), r.cfg.MaxExport)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	select {
	case r.exports <- struct{}{}:
		defer func() { <-r.exports }()
	default:
		w.Header().Set("Retry-After", "5")
		http.Error(w, "too many exports at once", http.StatusServiceUnavailable)
		return
	}
	srcs := r.sources(from, to)
	// The start: in the first segment with a keyframe fragment, the last
	// one at or before from, else the first one.
	var (
		init   []byte
		first  = -1
		startF fragInfo
	)
	for i, src := range srcs {
		f, err := src.open()
		if err != nil {
			continue
		}
		in, frags, _, _ := scan(f, src.limit, nil)
		f.Close()
		for _, fi := range frags {
			if !fi.sync {
				continue
			}
			if src.at(fi.base).After(from) && first >= 0 {
				break
			}
			first, startF, init = i, fi, in
		}
		if first >= 0 {
			break
		}
	}
	if first < 0 || !srcs[first].at(startF.base).Before(to) {
		http.Error(w, "nothing recorded in that range", http.StatusNotFound)
		return
	}
	// The end: before the first segment with another init.
	srcs = srcs[first:]
	truncated := false
	for i, src := range srcs[1:] {
		if f, err := src.open(); err == nil {
			in, _ := readInit(f, src.limit)
			f.Close()
			if in != nil && !bytes.Equal(in, init) {
				srcs, truncated = srcs[:i+1], true
				break
			}
		}
	}
	exportStart := srcs[0].at(startF.base)
	hd := w.Header()
	hd.Set("Content-Type", "video/mp4")
	hd.Set("Content-Disposition", `attachment; filename="`+r.feed+"-"+exportStart.UTC().Format("20060102-150405Z")+`.mp4"`)
	hd.Set("X-Camfeed-Export-Start", exportStart.UTC().Format(time.RFC3339Nano))
	hd.Set("X-Camfeed-Export-Truncated", strconv.FormatBool(truncated))
	if _, err := w.Write(init); err != nil {
		return
	}
	var (
		seq  uint32 = 1
		next uint64 // the earliest decode time for the next fragment
		buf  seekablebuffer.Buffer
	)
	for i, src := range srcs {
		f, err := src.open()
		if err != nil {
			continue // deleted meanwhile
		}
		_, _, _, err = scan(f, src.limit, func(fi fragInfo, _ []byte, parts fmp4.Parts) error {
			if i == 0 && fi.off < startF.off {
				return nil
			}
			if !src.at(fi.base).Before(to) {
				return errStop
			}
			tr := parts[0].Tracks[0]
			off := max(src.at(fi.base).Sub(exportStart), 0)
			tr.BaseTime = max(uint64(off*mediatime.Timescale/time.Second), next)
			next = tr.BaseTime + fi.dur
			parts[0].SequenceNumber = seq
			seq++
			buf.Reset()
			if err := parts[0].Marshal(&buf); err != nil {
				return err
			}
			_, err := w.Write(buf.Bytes())
			return err
		})
		f.Close()
		if err != nil {
			if !errors.Is(err, errStop) {
				r.log.Debug("record: export ended early", "err", err)
			}
			break
		}
	}
}

// errStop ends a scan early.
var errStop = errors.New("record: stop")

// sources lists the segment files that overlap [from, to), oldest first,
// the one being written included up to its last whole fragment.
func (r *Recorder) sources(from, to time.Time) []source {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []source
	for _, s := range r.segs {
		if s.Start.Before(to) && s.End().After(from) {
			out = append(out, source{path: filepath.Join(r.dir, s.Name), start: s.Start, limit: s.Bytes})
		}
	}
	if c := r.cur; c != nil && c.start.Before(to) {
		// If it is finished meanwhile, it is read under its new name.
		s := Segment{Start: c.start, Seconds: float64(c.ticks) / mediatime.Timescale}
		out = append(out, source{path: c.part, start: c.start, limit: c.complete, alt: s.Start.UTC().Format(nameTime)})
	}
	return out
}

func (s source) at(ticks uint64) time.Time {
	return s.start.Add(time.Duration(ticks) * time.Second / mediatime.Timescale)
}

func (s source) open() (*os.File, error) {
	f, err := os.Open(s.path)
	if err == nil || s.alt == "" {
		return f, err
	}
	m, _ := filepath.Glob(filepath.Join(filepath.Dir(s.path), s.alt+"_*s.mp4"))
	if len(m) != 1 {
		return nil, err
	}
	return os.Open(m[0])
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// access is the class of the recording routes: reading this feed (the
// routes name the feed literally, not as a {feed} wildcard).
func (r *Recorder) access() route.Access {
	return route.ReadOf(func(*http.Request) string { return r.feed })
}
