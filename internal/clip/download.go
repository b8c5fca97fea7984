package clip

import (
	"bufio"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/camfeed/camfeed/internal/hub"
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
	h, ok := s.feeds.Hub(feed)
	if !ok {
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
	c, err := s.make(r, h, req)
	if err != nil {
		if r.Context().Err() == nil {
			httpError(w, err)
		}
		return
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
	err = c.WriteMP4(bw, func(n int64) {
		hd.Set("Content-Length", strconv.FormatInt(n, 10))
		started = true
	})
	if err == nil {
		err = bw.Flush()
	}
	switch {
	case err != nil && !started:
		s.log.Error("clip: mp4", "feed", feed, "err", err)
		hd.Del("Content-Disposition")
		http.Error(w, err.Error(), http.StatusInternalServerError)
	case err != nil && r.Context().Err() == nil:
		s.log.Debug("clip: download ended early", "feed", feed, "err", err)
	}
}

func (s *Server) make(r *http.Request, h *hub.Hub, req request) (*Clip, error) {
	p, err := start(h, req)
	if err != nil {
		return nil, err
	}
	return p.finish(r.Context(), s.grace)
}
