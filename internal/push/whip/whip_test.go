package whip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/samplebuilder"

	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/testsrc"
	"github.com/camfeed/camfeed/internal/testsupport"
	"github.com/camfeed/camfeed/internal/testsupport/testfeed"
)

var small = testsrc.Config{Width: 320, Height: 240, FPS: 30, Intra: 30}

const token = "s3cret-token-value"

// receiver is a WHIP server built on pion, on loopback: it answers
// offers, depacketizes what arrives into Annex-B and keeps the session
// URLs it was asked to DELETE.
type receiver struct {
	base  string // http://127.0.0.1:port
	token string
	mute  bool // answer, then drop the peer connection: no media path

	wg      sync.WaitGroup // track readers
	mu      sync.Mutex
	pcs     map[string]*webrtc.PeerConnection
	n       int
	data    bytes.Buffer // Annex-B, as depacketized
	stamps  []uint32     // RTP timestamps of the samples
	deleted []string
	posts   int
	offers  []string
}

func startReceiver(t testing.TB, token string) *receiver {
	t.Helper()
	r := &receiver{token: token, pcs: map[string]*webrtc.PeerConnection{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /whip", r.offer)
	mux.HandleFunc("DELETE /whip/session/{id}", r.hangUp)
	r.base = testsupport.ServeHandler(t, mux).URL
	t.Cleanup(func() {
		r.closeAll()
		r.wg.Wait()
	})
	return r
}

func (r *receiver) url(query string) *url.URL {
	u, err := url.Parse("whip+" + r.base + "/whip" + query)
	if err != nil {
		panic(err)
	}
	return u
}

func (r *receiver) offer(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.posts++
	r.mu.Unlock()
	if req.Header.Get("Authorization") != "Bearer "+r.token {
		http.Error(w, "who are you", http.StatusUnauthorized)
		return
	}
	if req.Header.Get("Content-Type") != "application/sdp" {
		http.Error(w, "want SDP", http.StatusUnsupportedMediaType)
		return
	}
	offer, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.offers = append(r.offers, string(offer))
	r.mu.Unlock()
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	// NACKs, as a real server sends them: a keyframe is a burst of a
	// hundred packets, and a busy machine can drop some even on loopback.
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, ir); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(ir))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	r.wg.Add(1)
	var once sync.Once
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		once.Do(func() {
			defer r.wg.Done()
			r.read(tr)
		})
	})
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateClosed {
			once.Do(r.wg.Done) // no track ever came
		}
	})
	err = pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: string(offer)})
	if err != nil {
		pc.Close()
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		pc.Close()
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	pc.SetLocalDescription(answer)
	<-gathered
	r.mu.Lock()
	r.n++
	id := fmt.Sprint(r.n)
	r.pcs[id] = pc
	if r.mute {
		delete(r.pcs, id)
		defer pc.Close()
	}
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/sdp")
	w.Header().Set("Location", "/whip/session/"+id)
	w.WriteHeader(http.StatusCreated)
	io.WriteString(w, pc.LocalDescription().SDP)
}

// read depacketizes the track into Annex-B until it ends.
func (r *receiver) read(tr *webrtc.TrackRemote) {
	sb := samplebuilder.New(256, &codecs.H264Packet{}, 90000)
	for {
		p, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		sb.Push(p)
		for s := sb.Pop(); s != nil; s = sb.Pop() {
			r.mu.Lock()
			r.data.Write(s.Data)
			r.stamps = append(r.stamps, s.PacketTimestamp)
			r.mu.Unlock()
		}
	}
}

func (r *receiver) hangUp(w http.ResponseWriter, req *http.Request) {
	if req.Header.Get("Authorization") != "Bearer "+r.token {
		http.Error(w, "who are you", http.StatusUnauthorized)
		return
	}
	id := req.PathValue("id")
	r.mu.Lock()
	pc := r.pcs[id]
	delete(r.pcs, id)
	r.deleted = append(r.deleted, req.URL.Path)
	r.mu.Unlock()
	if pc == nil {
		http.NotFound(w, req)
		return
	}
	pc.Close()
}

// closeAll ends every session from the server's side.
func (r *receiver) closeAll() {
	r.mu.Lock()
	pcs := r.pcs
	r.pcs = map[string]*webrtc.PeerConnection{}
	r.mu.Unlock()
	for _, pc := range pcs {
		pc.Close()
	}
}

func (r *receiver) received() ([]byte, []uint32, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.data.Bytes()), append([]uint32(nil), r.stamps...), append([]string(nil), r.deleted...)
}

func dialTest(t testing.TB, u *url.URL, params hub.Params, opt Options) (*Writer, error) {
	ctx, cancel := context.WithTimeout(context.Background(), testsupport.Patience)
	defer cancel()
	opt.Log = testsupport.Logger(t)
	if opt.Timeout == 0 {
		opt.Timeout = 3 * time.Second
	}
	return Dial(ctx, u, params, opt)
}

func TestPushToPionReceiver(t *testing.T) {
	testsupport.CheckGoroutines(t, "push/whip", "pion")
	units, params := testfeed.Pattern(t, small, 60)
	r := startReceiver(t, token)
	w, err := dialTest(t, r.url("?token="+token), params, Options{})
	if err != nil {
		t.Fatal(err)
	}
	testfeed.Push(t, w, units, 0, small.FPS)
	// The sample builder gives out a picture when the next one starts:
	// wait for all but the last.
	testsupport.Eventually(t, "the pictures to arrive", func() bool {
		_, stamps, _ := r.received()
		return len(stamps) >= len(units)-1
	})
	if err := w.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	data, stamps, deleted := r.received()
	if len(deleted) != 1 || deleted[0] != "/whip/session/1" {
		t.Errorf("DELETEs: %q, want the session's Location once", deleted)
	}
	// One complete offer: send-only H.264 of the feed's own profile, its
	// candidates in it (non-trickle), loopback ones only for a server on
	// this machine.
	r.mu.Lock()
	offer := r.offers[0]
	r.mu.Unlock()
	for _, want := range []string{"a=sendonly", "packetization-mode=1", "profile-level-id=" + params.Info.ProfileLevelID(), "a=candidate:"} {
		if !strings.Contains(offer, want) {
			t.Errorf("the offer has no %q:\n%s", want, offer)
		}
	}
	for _, line := range strings.Split(offer, "\n") {
		if f := strings.Fields(line); strings.HasPrefix(line, "a=candidate:") && len(f) > 4 && !net.ParseIP(f[4]).IsLoopback() {
			t.Errorf("a candidate off loopback: %s", line)
		}
	}
	got := testfeed.Units(data)
	testfeed.CheckStream(t, "whip", got) // first a keyframe with SPS and PPS, no gaps
	if stderr, frames := testsupport.DecodeAnnexB(t, data); stderr != "" || frames < len(units)-2 {
		t.Errorf("ffmpeg decoded %d frames of %d: %s", frames, len(units), stderr)
	}
	// RTP time is the caller's PTS on the 90 kHz clock: one frame apart.
	for i := 1; i < len(stamps); i++ {
		if d := stamps[i] - stamps[i-1]; d != 90000/uint32(small.FPS) {
			t.Fatalf("RTP timestamps %d and %d are %d apart, want %d", i-1, i, d, 90000/small.FPS)
		}
	}
}

func TestWrongToken(t *testing.T) {
	testsupport.CheckGoroutines(t, "push/whip", "pion")
	_, params := testfeed.Pattern(t, small, 1)
	r := startReceiver(t, token)
	for _, tc := range []struct {
		name  string
		query string
		opt   string
		want  string
	}{
		{"query", "?token=not-the-token", "", "the server refused the token (HTTP 401)"},
		{"option", "", "not-the-token", "the server refused the token (HTTP 401)"},
		{"option wins", "?token=" + token, "not-the-token", "the server refused the token (HTTP 401)"},
		{"none", "", "", "the server refused the token (HTTP 401): it wants one: add ?token= or the token setting"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := dialTest(t, r.url(tc.query), params, Options{Token: tc.opt})
			if !errors.Is(err, ErrRefused) {
				t.Fatalf("err = %v, want ErrRefused", err)
			}
			if want := "whip+" + r.base + "/whip: " + tc.want; err.Error() != want {
				t.Errorf("err = %q, want %q", err, want)
			}
		})
	}
}

func TestNoServer(t *testing.T) {
	testsupport.CheckGoroutines(t, "push/whip", "pion")
	_, params := testfeed.Pattern(t, small, 1)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	u, _ := url.Parse("whip+http://" + addr + "/whip?token=" + token)
	_, err = dialTest(t, u, params, Options{})
	if err == nil || !strings.Contains(err.Error(), "cannot reach the server") || strings.Contains(err.Error(), token) {
		t.Fatalf("err = %v, want a plain 'cannot reach the server' without the token", err)
	}
	t.Log(err)
}

// The server ends the session: WriteUnit fails (the framework then
// reconnects), and Close still returns.
func TestServerGone(t *testing.T) {
	testsupport.CheckGoroutines(t, "push/whip", "pion")
	units, params := testfeed.Pattern(t, small, 30)
	r := startReceiver(t, token)
	w, err := dialTest(t, r.url(""), params, Options{Token: token, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	testfeed.Push(t, w, units[:10], 0, small.FPS)
	r.closeAll()
	err = testfeed.PushUntilError(t, w, units, 10, small.FPS)
	if !errors.Is(err, ErrGone) {
		t.Errorf("err = %v, want ErrGone", err)
	}
	t.Logf("after the server left: %v", err)
}

// The server answers, but no media path comes up: Dial says so in
// words within its timeout, and DELETEs the session it was given.
func TestNoMediaPath(t *testing.T) {
	testsupport.CheckGoroutines(t, "push/whip", "pion")
	_, params := testfeed.Pattern(t, small, 1)
	r := startReceiver(t, token)
	r.mute = true
	_, err := dialTest(t, r.url(""), params, Options{Token: token, Timeout: time.Second})
	if !errors.Is(err, ErrNoConnection) {
		t.Fatalf("err = %v, want ErrNoConnection", err)
	}
	t.Log(err)
	if _, _, deleted := r.received(); len(deleted) != 1 {
		t.Errorf("DELETEs: %q, want the session's", deleted)
	}
}

// The framework may Close from another goroutine to stop a push: the
// writes then fail at once, and nothing is left running.
func TestCloseWhileWriting(t *testing.T) {
	testsupport.CheckGoroutines(t, "push/whip")
	units, params := testfeed.Pattern(t, small, 30)
	r := startReceiver(t, token)
	w, err := dialTest(t, r.url(""), params, Options{Token: token})
	if err != nil {
		t.Fatal(err)
	}
	testfeed.CloseWhileWriting(t, w, units, small.FPS)
}
