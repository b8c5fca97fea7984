package clip

import (
	"bufio"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/camfeed/camfeed/internal/door"
)

// bufPool holds the write buffers of clip downloads: one clip's sample
// data goes out NAL unit by NAL unit, and the small ones (SEI, P slices of
// a still scene) are gathered into fewer writes.
var bufPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 32<<10) }}

// sendTimeout bounds one download: a client that reads too slowly would
// otherwise hold the units of its clip in memory after the ring let go.
const sendTimeout = 5 * time.Minute

// handleDownload serves GET /{feed}/clip.mp4?seconds=N[&after=M].
func (s *Server) handleDownload(w http.ResponseWriter, r *http.Request) {
	feed := r.PathValue("feed")
	if _, ok := s.feeds.Hub(feed); !ok {
		http.NotFound(w, r)
		return
	}
	req, err := s.parseRequest(r.URL.Query())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	release, err := s.slots.download(feed, s.cfg.Who(r))
	if err != nil {
		httpError(w, err)
		return
	}
	defer release()
	// A download is a viewer like any other: it takes a place in the door
	// for as long as it lasts; with after= the door subscribes it, never
	// to be skipped within the wait.
	who := door.WhoHTTP(r, feed, door.Clip)
	enter := s.door.Admit
	if req.after > 0 {
		who.Ahead = req.after
		enter = s.door.Enter
	}
	se, err := enter(who)
	if err != nil {
		door.Refuse(w, err)
		return
	}
	n, reason := s.download(w, r, feed, se, req)
	se.Sent(int(n))
	se.Leave(reason)
}

// download makes and sends one clip; it returns the bytes sent and how
// it ended, in words.
func (s *Server) download(w http.ResponseWriter, r *http.Request, feed string, se *door.Session, req request) (int64, string) {
	p, err := start(se.Hub(), req, se.Sub)
	var c *Clip
	if err == nil {
		c, err = p.finish(r.Context(), s.grace)
	}
	if err != nil {
		if r.Context().Err() == nil {
			httpError(w, err)
			return 0, err.Error()
		}
		return 0, "viewer closed the connection"
	}
	hd := w.Header()
	hd.Set("Content-Type", "video/mp4")
	hd.Set("Content-Disposition", `attachment; filename="`+filename(feed, c.Start)+`"`)
	hd.Set("Cache-Control", "no-store")
	clipHeaders(hd, c)
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(sendTimeout))
	bw := bufPool.Get().(*bufio.Writer)
	bw.Reset(w)
	defer func() {
		bw.Reset(nil)
		bufPool.Put(bw)
	}()
	started := false
	var size int64
	err = c.WriteMP4(bw, func(n int64) {
		hd.Set("Content-Length", strconv.FormatInt(n, 10))
		started, size = true, n
	})
	if err == nil {
		err = bw.Flush()
	}
	switch {
	case err != nil && !started:
		s.log.Error("clip: mp4", "feed", feed, "err", err)
		hd.Del("Content-Disposition")
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return 0, "cannot write the clip: " + err.Error()
	case err != nil && r.Context().Err() == nil:
		s.log.Debug("clip: download ended early", "feed", feed, "err", err)
		return 0, "download ended early: " + err.Error()
	case err != nil:
		return 0, "viewer closed the connection"
	}
	return size, "clip sent"
}
