package feed

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/camfeed/camfeed/internal/h264"
)

// sink is one attempt's source.Sink: it parses into the hub. Write, Idle and
// WriteAU are called from the source's goroutine only.
type sink struct {
	f      *Feed
	parser *h264.Parser
	emitFn func(*h264.AccessUnit)
	flush  bool // Idle may end an access unit (see h264.Parser.Pause)
	gotAU  atomic.Bool
	units  atomic.Uint64 // published, for source.UnitCounter

	mu   sync.Mutex
	last h264.Stats
}

func (s *sink) Write(p []byte) (int, error) {
	s.parser.Write(p, time.Now(), s.emitFn)
	s.update()
	return len(p), nil
}

func (s *sink) Idle() {
	if s.flush {
		s.parser.Pause(time.Now(), s.emitFn)
		s.update()
	}
}

func (s *sink) WriteAU(nalus [][]byte) {
	s.parser.WriteAU(nalus, time.Now(), s.emitFn)
	s.update()
}

// NewInput implements source.InputBreaker: the next publisher's stream
// is parsed from scratch, and may end access units at its pauses again
// once it shows it pauses only between pictures.
func (s *sink) NewInput() {
	s.parser.NewInput()
	s.flush = true
}

// Units implements source.UnitCounter: a source that admits publishers
// drops one whose bytes make no access unit.
func (s *sink) Units() uint64 { return s.units.Load() }

func (s *sink) emit(au *h264.AccessUnit) {
	s.f.hub.Publish(au)
	s.units.Add(1)
	s.f.lastAU.Store(au.Received.UnixNano())
	if !s.gotAU.Swap(true) {
		s.f.setState(StateRunning)
		_, _, info, _ := s.parser.Params()
		s.f.log.Info("video flowing", "width", info.Width, "height", info.Height, "fps", info.FPS,
			"profile", info.ProfileName(), "level", info.Level())
	}
}

// update publishes the parser's counters, and stops ending access units
// at input pauses once the input showed it pauses inside pictures.
func (s *sink) update() {
	st := s.parser.Stats()
	if s.flush && st.Fragments > 0 {
		s.flush = false
		s.f.log.Info("input pauses inside pictures; access units now end at the next picture's start (adds one frame of latency)")
	}
	s.mu.Lock()
	s.last = st
	s.mu.Unlock()
	s.f.mu.Lock()
	s.f.parserStats = st
	s.f.mu.Unlock()
}

func (s *sink) stats() h264.Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}
