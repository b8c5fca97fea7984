package webrtc

import (
	"encoding/hex"
	"errors"
	"strings"
	"sync"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

const playoutDelayURI = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay"

var errNoH264 = errors.New("webrtc: the browser offered no H.264 with packetization-mode=1")

// track is one peer's video track. Peers do not share a pion track:
// each writes its own sequence numbers, so one peer can skip frames
// without the others, while the RTP payloads stay shared.
type track struct {
	profile [2]byte // the stream's profile_idc and constraint flags

	mu        sync.Mutex
	w         webrtc.TrackLocalWriter
	ssrc      uint32
	pt        uint8
	playoutID uint8 // 0 when the browser did not offer the extension
	bound     chan struct{}
	once      sync.Once
}

func newTrack(profile [2]byte) *track {
	return &track{profile: profile, bound: make(chan struct{})}
}

// Bind picks the negotiated H.264 payload type: the stream's own profile
// when the browser offered it, else Constrained Baseline, else any
// packetization-mode=1 H.264. Browsers decode every profile they offer,
// and in practice any profile whatever was negotiated; the choice only
// keeps the answer honest where it can be.
func (t *track) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	var best *webrtc.RTPCodecParameters
	score := -1
	for _, c := range ctx.CodecParameters() {
		if !strings.EqualFold(c.MimeType, webrtc.MimeTypeH264) || fmtpValue(c.SDPFmtpLine, "packetization-mode") != "1" {
			continue
		}
		plid, _ := hex.DecodeString(fmtpValue(c.SDPFmtpLine, "profile-level-id"))
		s := 0
		switch {
		case len(plid) >= 2 && plid[0] == t.profile[0] && plid[1] == t.profile[1]:
			s = 3
		case len(plid) >= 2 && plid[0] == 0x42 && plid[1]&0x40 != 0:
			s = 2
		case len(plid) >= 2 && plid[0] == t.profile[0]:
			s = 1
		}
		if s > score {
			c := c
			best, score = &c, s
		}
	}
	if best == nil {
		return webrtc.RTPCodecParameters{}, errNoH264
	}
	t.mu.Lock()
	t.w, t.ssrc, t.pt = ctx.WriteStream(), uint32(ctx.SSRC()), uint8(best.PayloadType)
	for _, e := range ctx.HeaderExtensions() {
		if e.URI == playoutDelayURI {
			t.playoutID = uint8(e.ID)
		}
	}
	t.mu.Unlock()
	t.once.Do(func() { close(t.bound) })
	return *best, nil
}

// Unbind is called when the peer connection closes.
func (t *track) Unbind(webrtc.TrackLocalContext) error {
	t.mu.Lock()
	t.w = nil
	t.mu.Unlock()
	return nil
}

func (t *track) ID() string                { return "video" }
func (t *track) RID() string               { return "" }
func (t *track) StreamID() string          { return "camfeed" }
func (t *track) Kind() webrtc.RTPCodecType { return webrtc.RTPCodecTypeVideo }

// writer returns what the peer's sender needs once bound.
func (t *track) writer() (w webrtc.TrackLocalWriter, h rtp.Header) {
	t.mu.Lock()
	defer t.mu.Unlock()
	h = rtp.Header{Version: 2, PayloadType: t.pt, SSRC: t.ssrc}
	if t.playoutID != 0 {
		// min = max = 0: render each frame as soon as it is decoded, the
		// way Chrome's low-latency renderer does for game streaming.
		_ = h.SetExtension(t.playoutID, []byte{0, 0, 0})
	}
	return t.w, h
}

func fmtpValue(fmtp, key string) string {
	for _, kv := range strings.Split(fmtp, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if ok && strings.EqualFold(k, key) {
			return v
		}
	}
	return ""
}
