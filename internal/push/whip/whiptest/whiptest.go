// Package whiptest is a WHIP server built on pion for tests, on
// loopback: it answers offers, depacketizes what arrives into Annex-B and
// keeps the session URLs it was asked to DELETE.
package whiptest

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/samplebuilder"

	"github.com/camfeed/camfeed/internal/testsupport"
)

// Options tune a Receiver.
type Options struct {
	Token string // the bearer token it wants
	// Mute answers, then drops the peer connection: no media path.
	Mute bool
	// Answer, when set, rewrites each SDP answer before it goes out (to
	// send the media through a relay). The receiver is then an ICE-lite
	// agent, which sends no checks of its own: the push reaches it only at
	// the candidates of the answer.
	Answer func(sdp string) string
}

// Receiver is the WHIP server.
type Receiver struct {
	Base string // http://127.0.0.1:port
	opt  Options

	wg      sync.WaitGroup // track readers
	mu      sync.Mutex
	pcs     map[string]*webrtc.PeerConnection
	n       int
	data    bytes.Buffer // Annex-B, as depacketized
	stamps  []uint32     // RTP timestamps of the samples
	samples []Sample
	packets int
	deleted []string
	posts   int
	offers  []string
	down    bool
}

// Start serves a Receiver that wants token until the test ends.
func Start(t testing.TB, token string) *Receiver {
	t.Helper()
	return StartWith(t, Options{Token: token})
}

// StartWith is Start with more options.
func StartWith(t testing.TB, opt Options) *Receiver {
	t.Helper()
	r := &Receiver{opt: opt, pcs: map[string]*webrtc.PeerConnection{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /whip", r.offer)
	mux.HandleFunc("DELETE /whip/session/{id}", r.hangUp)
	r.Base = testsupport.ServeHandler(t, mux).URL
	t.Cleanup(func() {
		r.CloseAll()
		r.wg.Wait()
	})
	return r
}

// URL is the push URL of the endpoint, whip+http://127.0.0.1:port/whip,
// followed by query.
func (r *Receiver) URL(query string) *url.URL {
	u, err := url.Parse("whip+" + r.Base + "/whip" + query)
	if err != nil {
		panic(err)
	}
	return u
}

// SetDown makes the endpoint answer 503 (down) or serve again.
func (r *Receiver) SetDown(down bool) {
	r.mu.Lock()
	r.down = down
	r.mu.Unlock()
}

func (r *Receiver) offer(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.posts++
	down := r.down
	r.mu.Unlock()
	if down {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	if req.Header.Get("Authorization") != "Bearer "+r.opt.Token {
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
	se.SetLite(r.opt.Answer != nil)
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
	if err := pc.SetLocalDescription(answer); err != nil {
		pc.Close()
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	<-gathered
	r.mu.Lock()
	r.n++
	id := fmt.Sprint(r.n)
	r.pcs[id] = pc
	if r.opt.Mute {
		delete(r.pcs, id)
		defer pc.Close()
	}
	r.mu.Unlock()
	sdp := pc.LocalDescription().SDP
	if r.opt.Answer != nil {
		sdp = r.opt.Answer(sdp)
	}
	w.Header().Set("Content-Type", "application/sdp")
	w.Header().Set("Location", "/whip/session/"+id)
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, sdp)
}

// read depacketizes the track into Annex-B until it ends.
func (r *Receiver) read(tr *webrtc.TrackRemote) {
	// A picture that lost a packet is given up once 3 s of later ones
	// have come (RTP time), not only after 256 packets: on a link that
	// carries keyframes only, that would take many seconds. (Not less:
	// keyframes only are a second apart.)
	sb := samplebuilder.New(256, &codecs.H264Packet{}, 90000, samplebuilder.WithMaxTimeDelay(3*time.Second))
	for {
		p, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		r.mu.Lock()
		r.packets++
		r.mu.Unlock()
		sb.Push(p)
		for s := sb.Pop(); s != nil; s = sb.Pop() {
			r.mu.Lock()
			r.data.Write(s.Data)
			r.stamps = append(r.stamps, s.PacketTimestamp)
			r.samples = append(r.samples, Sample{Data: s.Data, At: time.Now()})
			r.mu.Unlock()
		}
	}
}

func (r *Receiver) hangUp(w http.ResponseWriter, req *http.Request) {
	if req.Header.Get("Authorization") != "Bearer "+r.opt.Token {
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

// CloseAll ends every session from the server's side.
func (r *Receiver) CloseAll() {
	r.mu.Lock()
	pcs := r.pcs
	r.pcs = map[string]*webrtc.PeerConnection{}
	r.mu.Unlock()
	for _, pc := range pcs {
		pc.Close()
	}
}

// Received returns what arrived so far: the Annex-B stream, the RTP
// timestamp of each picture, and the paths DELETEd.
func (r *Receiver) Received() (data []byte, stamps []uint32, deleted []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.data.Bytes()), append([]uint32(nil), r.stamps...), append([]string(nil), r.deleted...)
}

// Sample is one picture as it arrived.
type Sample struct {
	Data []byte // Annex-B
	At   time.Time
}

// Samples returns the pictures that arrived so far, in order.
func (r *Receiver) Samples() []Sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Sample(nil), r.samples...)
}

// Packets is how many RTP packets arrived.
func (r *Receiver) Packets() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.packets
}

// Offers returns the SDP offers received, and Posts how many POSTs came
// (refused ones too).
func (r *Receiver) Offers() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.offers...)
}

// Posts is how many offers were POSTed, refused ones included.
func (r *Receiver) Posts() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.posts
}
