package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"github.com/camfeed/camfeed/internal/h264"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/mediatime"
)

// retryEvery is how often a paused recorder checks whether it may resume.
const retryEvery = 5 * time.Second

// segment is the file being written. start, part and complete are read by
// the API under r.mu; the rest belongs to the writer.
type segment struct {
	part     string    // path of START.mp4.part
	start    time.Time // Received time of its first unit
	complete int64     // bytes of whole fragments, init included
	ticks    int64     // duration of whole fragments

	f        *os.File
	sps, pps []byte
	clock    *mediatime.Clock
	seq      uint32
	frags    int
}

// writer turns the units of Run's hub viewer into segment files. It runs
// on Run's goroutine only.
type writer struct {
	r         *Recorder
	seg       *segment
	frag      []*h264.AccessUnit // the fragment being gathered
	fragTicks []int64
	paused    bool
	lastTry   time.Time
	buf       seekablebuffer.Buffer
	payload   []byte
	samples   []fmp4.Sample
	sampleP   []*fmp4.Sample
}

// unit takes the viewer's next unit.
func (w *writer) unit(f hub.Frame) {
	au := f.AccessUnit
	if f.Skipped && w.seg != nil {
		// Units were skipped (the recorder fell behind, or the source
		// restarted): the timeline has a hole, so the segment ends here.
		w.finish(nil)
	}
	if w.seg != nil {
		sps, pps := paramSets(au)
		// Half a frame early counts: keyframes jitter around the mark.
		due := w.r.cfg.Segment - mediatime.Duration(w.seg.clock.Frame())/2
		rotate := au.Keyframe && (au.Received.Sub(w.seg.start) >= due ||
			w.seg.complete+w.fragBytes() >= w.r.cfg.MaxBytes/4 ||
			!bytes.Equal(sps, w.seg.sps) || !bytes.Equal(pps, w.seg.pps))
		if !rotate {
			t := w.seg.clock.Next(au, false)
			if au.Keyframe || len(w.frag) > 0 && au.Received.Sub(w.frag[0].Received) >= maxFragment {
				w.flush(t)
			}
			if w.seg != nil {
				w.frag = append(w.frag, au)
				w.fragTicks = append(w.fragTicks, t)
			}
			return
		}
		w.finish(au)
	}
	if !au.Keyframe || !w.mayStart(au.Received) {
		return
	}
	w.open(au)
	if w.seg != nil {
		w.frag = append(w.frag, au)
		w.fragTicks = append(w.fragTicks, w.seg.clock.Next(au, false))
	}
}

func (w *writer) fragBytes() int64 {
	n := 0
	for _, au := range w.frag {
		n += au.Size()
	}
	return int64(n)
}

// mayStart says whether a new segment may begin: always, unless paused,
// in which case free space is checked again every retryEvery, with a
// margin so that recording does not flap at the threshold.
func (w *writer) mayStart(now time.Time) bool {
	if !w.paused {
		return true
	}
	if time.Since(w.lastTry) < w.r.retry {
		return false
	}
	w.lastTry = time.Now()
	r := w.r
	margin := min(r.cfg.MinFree/10+1<<20, 64<<20)
	if free, err := r.free(r.dir); err == nil && free < r.cfg.MinFree+margin {
		return false
	}
	w.paused = false
	r.log.Info("record: resumed")
	return true
}

// pause stops writing until mayStart allows it again.
func (w *writer) pause(err error) {
	w.frag, w.fragTicks = w.frag[:0], w.fragTicks[:0]
	w.finalize()
	if !w.paused {
		w.r.log.Error("record: paused", "err", err)
	}
	w.paused, w.lastTry = true, time.Now()
	w.r.setState(StatePaused, err.Error())
}

// open starts a segment at keyframe au: the part file and its init.
func (w *writer) open(au *h264.AccessUnit) {
	r := w.r
	sps, pps := paramSets(au)
	seg := &segment{
		start: au.Received, sps: sps, pps: pps, seq: 1,
		clock: mediatime.NewClock(r.frameInterval(au), mediatime.Smooth),
	}
	seg.part = filepath.Join(r.dir, au.Received.UTC().Format(nameTime)+partExt)
	init := fmp4.Init{Tracks: []*fmp4.InitTrack{{ID: 1, TimeScale: mediatime.Timescale, Codec: &codecs.H264{SPS: sps, PPS: pps}}}}
	w.buf.Reset()
	if err := init.Marshal(&w.buf); err != nil {
		w.pause(fmt.Errorf("record: init: %w", err))
		return
	}
	if err := r.makeRoom(int64(len(w.buf.Bytes())), au.Received); err != nil {
		w.pause(err)
		return
	}
	f, err := os.OpenFile(seg.part, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		w.pause(fmt.Errorf("record: %w", err))
		return
	}
	seg.f = f
	n, err := f.Write(w.buf.Bytes())
	if err != nil {
		f.Close()
		os.Remove(seg.part)
		w.pause(fmt.Errorf("record: %w", err))
		return
	}
	r.mu.Lock()
	seg.complete = int64(n)
	r.cur, w.seg = seg, seg
	r.state, r.reason = StateRecording, ""
	r.mu.Unlock()
}

// flush writes the gathered fragment, which ends at tick end.
func (w *writer) flush(end int64) {
	seg := w.seg
	if seg == nil || len(w.frag) == 0 {
		return
	}
	w.payload = w.payload[:0]
	w.samples = w.samples[:0]
	w.sampleP = w.sampleP[:0]
	for i, au := range w.frag {
		next := end
		if i+1 < len(w.frag) {
			next = w.fragTicks[i+1]
		}
		start := len(w.payload)
		w.payload = appendAVCC(w.payload, au, seg.sps, seg.pps)
		w.samples = append(w.samples, fmp4.Sample{
			Duration:        uint32(next - w.fragTicks[i]),
			IsNonSyncSample: !au.Keyframe,
			Payload:         w.payload[start:len(w.payload):len(w.payload)],
		})
	}
	for i := range w.samples {
		w.sampleP = append(w.sampleP, &w.samples[i])
	}
	part := fmp4.Part{SequenceNumber: seg.seq, Tracks: []*fmp4.PartTrack{{
		ID: 1, BaseTime: uint64(w.fragTicks[0]), Samples: w.sampleP,
	}}}
	w.frag, w.fragTicks = w.frag[:0], w.fragTicks[:0]
	w.buf.Reset()
	if err := part.Marshal(&w.buf); err != nil {
		w.drop()
		w.pause(fmt.Errorf("record: fragment: %w", err))
		return
	}
	data := w.buf.Bytes()
	if err := w.r.makeRoom(int64(len(data)), seg.start.Add(mediatime.Duration(end))); err != nil {
		w.drop()
		if errors.Is(err, errNoRoom) {
			// The segment alone reached max_bytes: close it, so that it
			// can go to make room, and start again at the next keyframe.
			w.finalize()
			w.r.setState(StateWaiting, "")
			return
		}
		w.pause(err)
		return
	}
	if _, err := seg.f.Write(data); err != nil {
		// Cut the file back to its last whole fragment: what a failed
		// write left (ENOSPC midway) would not play.
		_ = seg.f.Truncate(seg.complete)
		_, _ = seg.f.Seek(seg.complete, 0)
		w.drop()
		w.pause(fmt.Errorf("record: write: %w", err))
		return
	}
	w.r.mu.Lock()
	seg.complete += int64(len(data))
	seg.ticks = end
	w.r.mu.Unlock()
	seg.seq++
	seg.frags++
}

func (w *writer) drop() {
	w.r.mu.Lock()
	w.r.dropped++
	w.r.mu.Unlock()
}

// finish writes what is gathered and closes the segment. next, when not
// nil, is the unit after the last one, which gives its duration.
func (w *writer) finish(next *h264.AccessUnit) {
	if w.seg == nil {
		return
	}
	if len(w.frag) > 0 {
		last := w.fragTicks[len(w.fragTicks)-1]
		end := last + w.seg.clock.Frame()
		if next != nil {
			end = min(max(w.seg.clock.Next(next, false), last+1), end+w.seg.clock.Frame())
		}
		w.flush(end)
	}
	w.finalize()
}

// finalize syncs the segment and renames it to its listed name; a segment
// without a fragment is deleted.
func (w *writer) finalize() {
	seg := w.seg
	if seg == nil {
		return
	}
	w.seg = nil
	r := w.r
	if seg.frags == 0 {
		seg.f.Close()
		os.Remove(seg.part)
		r.mu.Lock()
		r.cur = nil
		r.mu.Unlock()
		return
	}
	err := seg.f.Sync()
	if cerr := seg.f.Close(); err == nil {
		err = cerr
	}
	s := Segment{Start: seg.start, Seconds: float64(seg.ticks) / mediatime.Timescale, Bytes: seg.complete}
	s.Name = s.fileName()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cur = nil
	if err == nil {
		err = os.Rename(seg.part, filepath.Join(r.dir, s.Name))
	}
	if err != nil {
		// Left as a part file, repaired at the next start.
		r.log.Error("record: close segment", "err", err)
		return
	}
	syncDir(r.dir)
	r.segs = append(r.segs, s)
	r.log.Debug("record: segment", "name", s.Name, "bytes", s.Bytes)
}

// frameInterval estimates the feed's frame interval for a segment's clock
// from the units before au (up to 20 s: the longer, the closer; see
// mediatime.Estimate).
func (r *Recorder) frameInterval(au *h264.AccessUnit) time.Duration {
	return mediatime.Estimate(r.h.Since(au.Received.Add(-20*time.Second)), r.h.Params().Info.FPS)
}

func paramSets(au *h264.AccessUnit) (sps, pps []byte) {
	for _, n := range au.NALUs {
		switch h264.TypeOf(n) {
		case h264.NALUTypeSPS:
			sps = n
		case h264.NALUTypePPS:
			pps = n
		}
	}
	return sps, pps
}

// appendAVCC appends au as an MP4 sample: each NAL unit behind its 4-byte
// length, leaving out the parameter sets that the init already carries
// (ISO/IEC 14496-15 §5.3.2).
func appendAVCC(dst []byte, au *h264.AccessUnit, sps, pps []byte) []byte {
	for _, n := range au.NALUs {
		switch t := h264.TypeOf(n); {
		case t == h264.NALUTypeSPS && bytes.Equal(n, sps), t == h264.NALUTypePPS && bytes.Equal(n, pps):
			continue
		}
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(n)))
		dst = append(dst, n...)
	}
	return dst
}

// syncDir makes renames and deletions in dir durable.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
