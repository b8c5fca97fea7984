package hub

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/h264"
)

var t0 = time.Unix(1_700_000_000, 0)

// feed makes access units of size bytes, a keyframe every gop, 30 per second.
type feed struct {
	n    int
	gop  int
	size int
	data []byte
}

func newFeed(gop, size int) *feed { return &feed{gop: gop, size: size, data: make([]byte, size)} }

func (f *feed) next() *h264.AccessUnit {
	au := &h264.AccessUnit{
		Data:     f.data,
		Keyframe: f.n%f.gop == 0,
		Received: t0.Add(time.Duration(f.n) * time.Second / 30),
	}
	f.n++
	return au
}

func publishN(h *Hub, f *feed, n int) {
	for range n {
		h.Publish(f.next())
	}
}

func mustNext(t *testing.T, s *Sub) Frame {
	t.Helper()
	f, ok, err := s.TryNext()
	if err != nil || !ok {
		t.Fatalf("TryNext: ok=%v err=%v", ok, err)
	}
	return f
}

func mustWait(t *testing.T, s *Sub) {
	t.Helper()
	if f, ok, err := s.TryNext(); ok || err != nil {
		t.Fatalf("expected to wait, got seq %d ok=%v err=%v", f.Seq, ok, err)
	}
}

func ptr(p JoinPolicy) *JoinPolicy { return &p }

func TestJoinPolicies(t *testing.T) {
	tests := []struct {
		name      string
		policy    JoinPolicy
		published int // before join, gop 30
		wantSeqs  []uint64
		thenWait  bool
	}{
		// Keyframe at 30 is 14 frames (467 ms) old: older than half the lag budget.
		{"instant old keyframe sends it then waits", JoinInstant, 45, []uint64{30}, true},
		// Keyframe at 30 is 2 frames old: the GOP is live, keep playing it.
		{"instant fresh keyframe plays on", JoinInstant, 33, []uint64{30, 31, 32}, true},
		{"keyframe replays the GOP", JoinKeyframe, 45, []uint64{30, 31, 32, 33}, false},
		{"next waits", JoinNext, 45, nil, true},
		{"nothing yet waits", JoinKeyframe, 0, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := New(Config{})
			f := newFeed(30, 100)
			publishN(h, f, tc.published)
			s := h.Subscribe(SubOptions{Output: "test", Join: ptr(tc.policy)})
			defer s.Close()
			for i, want := range tc.wantSeqs {
				fr := mustNext(t, s)
				if fr.Seq != want {
					t.Fatalf("frame %d: seq %d, want %d", i, fr.Seq, want)
				}
				if i == 0 && !fr.Keyframe {
					t.Fatalf("first frame is not a keyframe")
				}
			}
			if tc.thenWait {
				mustWait(t, s)
				// The next keyframe arrives: the viewer is at the live edge.
				publishN(h, f, 61-tc.published)
				fr := mustNext(t, s)
				if fr.Seq != 60 || !fr.Keyframe {
					t.Fatalf("after wait got seq %d key %v, want keyframe 60", fr.Seq, fr.Keyframe)
				}
			}
		})
	}
}

func TestSlowViewerSkipsToKeyframe(t *testing.T) {
	h := New(Config{LagBudget: 500 * time.Millisecond})
	f := newFeed(30, 100)
	publishN(h, f, 1)
	s := h.Subscribe(SubOptions{Output: "test", Join: ptr(JoinKeyframe)})
	defer s.Close()
	if fr := mustNext(t, s); fr.Seq != 0 {
		t.Fatalf("first seq %d", fr.Seq)
	}
	// The viewer stalls for 40 frames (1.33 s): frame 1 is too old and the
	// keyframe at 30 is ahead of it, so it jumps there.
	publishN(h, f, 40)
	fr := mustNext(t, s)
	if fr.Seq != 30 || !fr.Keyframe || !fr.Skipped {
		t.Fatalf("got seq %d key %v skipped %v, want skip to keyframe 30", fr.Seq, fr.Keyframe, fr.Skipped)
	}
	// Within the GOP and behind by more than the budget: wait for the next keyframe.
	publishN(h, f, 20) // newest 60, keyframe 60
	fr = mustNext(t, s)
	if fr.Seq != 60 || !fr.Skipped {
		t.Fatalf("got seq %d skipped %v, want skip to keyframe 60", fr.Seq, fr.Skipped)
	}
	publishN(h, f, 10) // newest 70: 61 is 300 ms behind, within budget
	for want := uint64(61); want <= 65; want++ {
		if fr := mustNext(t, s); fr.Seq != want {
			t.Fatalf("seq %d, want %d", fr.Seq, want)
		}
	}
	// Fall 24 frames (800 ms) behind: keyframe 90 is ahead, jump there.
	publishN(h, f, 20) // newest 90, keyframe 90
	if fr := mustNext(t, s); fr.Seq != 90 || !fr.Skipped {
		t.Fatalf("seq %d, want jump to 90", fr.Seq)
	}
	if got := s.Stats().Skips; got != 3 {
		t.Fatalf("skips %d, want 3", got)
	}
	if got := h.Stats().Skips; got != 3 {
		t.Fatalf("hub skips %d, want 3", got)
	}
}

func TestMidGOPLagWaitsForNextKeyframe(t *testing.T) {
	h := New(Config{LagBudget: 200 * time.Millisecond})
	f := newFeed(60, 100)
	publishN(h, f, 1)
	s := h.Subscribe(SubOptions{Join: ptr(JoinKeyframe)})
	defer s.Close()
	mustNext(t, s)
	publishN(h, f, 20) // 1..20; frame 1 is 633 ms behind, keyframe 0 is behind it
	mustWait(t, s)
	publishN(h, f, 40) // 21..60
	if fr := mustNext(t, s); fr.Seq != 60 || !fr.Skipped || !fr.Keyframe {
		t.Fatalf("seq %d, want keyframe 60 after skip", fr.Seq)
	}
}

func TestBudgetBoundsMemoryAndKeepsGOP(t *testing.T) {
	h := New(Config{MaxBytes: 10_000})
	f := newFeed(30, 1000)
	publishN(h, f, 1000)
	st := h.Stats()
	// The current GOP (10 units after keyframe 990) is exactly the budget.
	if st.BufferedBytes > 10_000 {
		t.Fatalf("buffered %d bytes, budget 10000", st.BufferedBytes)
	}
	s := h.Subscribe(SubOptions{Join: ptr(JoinKeyframe)})
	defer s.Close()
	if fr := mustNext(t, s); fr.Seq != 990 || !fr.Keyframe {
		t.Fatalf("join at %d, want keyframe 990", fr.Seq)
	}
	// A GOP over twice the budget is not kept whole; memory stays bounded.
	big := New(Config{MaxBytes: 10_000})
	f = newFeed(1_000_000, 1000)
	publishN(big, f, 100)
	if st := big.Stats(); st.BufferedBytes > 20_000 || st.GOPOverflows != 1 {
		t.Fatalf("buffered %d, overflows %d", st.BufferedBytes, st.GOPOverflows)
	}
	s2 := big.Subscribe(SubOptions{})
	defer s2.Close()
	mustWait(t, s2)
}

func TestUnitCapBoundsTinyUnits(t *testing.T) {
	h := New(Config{MaxBytes: 1 << 30})
	f := newFeed(100_000_000, 1)
	publishN(h, f, maxUnits+1000)
	if st := h.Stats(); st.BufferedUnits != maxUnits {
		t.Fatalf("buffered units %d, want cap %d", st.BufferedUnits, maxUnits)
	}
}

func TestWindow(t *testing.T) {
	h := New(Config{Window: time.Second})
	f := newFeed(10, 10)
	publishN(h, f, 300)
	st := h.Stats()
	// keeps 1 s plus the rest of the GOP that straddles it
	if st.Buffered > time.Second+time.Second/3 {
		t.Fatalf("buffered %v, window 1s", st.Buffered)
	}
}

func TestCloseWakesViewers(t *testing.T) {
	h := New(Config{})
	s := h.Subscribe(SubOptions{})
	errc := make(chan error, 1)
	go func() {
		_, err := s.Next(context.Background())
		errc <- err
	}()
	time.Sleep(10 * time.Millisecond)
	h.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("err %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("viewer not woken by Close")
	}
}

func TestResetMakesViewersWaitForNewKeyframe(t *testing.T) {
	h := New(Config{})
	f := newFeed(30, 10)
	publishN(h, f, 10)
	s := h.Subscribe(SubOptions{Join: ptr(JoinKeyframe)})
	defer s.Close()
	for range 10 {
		mustNext(t, s)
	}
	h.Reset()
	f.n = 5 // a restarted source: next unit not a keyframe... parser ensures it is, but test the hub
	publishN(h, f, 1)
	mustWait(t, s)
	f.n = 30
	publishN(h, f, 1)
	if fr := mustNext(t, s); !fr.Keyframe {
		t.Fatal("after reset the first frame must be a keyframe")
	}
	st := h.Stats()
	if st.ViewersTotal != 1 {
		t.Fatalf("viewers %d", st.ViewersTotal)
	}
}

// TestConcurrent runs a writer and many readers under -race: every reader
// sees increasing seqs, its first unit and every unit after a skip is a
// keyframe.
func TestConcurrent(t *testing.T) {
	h := New(Config{MaxBytes: 64 << 10, LagBudget: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Go(func() {
			s := h.Subscribe(SubOptions{Output: fmt.Sprint("r", i%3)})
			defer s.Close()
			var last uint64
			first := true
			for {
				fr, err := s.Next(ctx)
				if err != nil {
					return
				}
				if (first || fr.Skipped) && !fr.Keyframe {
					errs <- fmt.Errorf("reader %d: seq %d after skip is not a keyframe", i, fr.Seq)
					return
				}
				if !first && fr.Seq != last+1 && !fr.Skipped {
					errs <- fmt.Errorf("reader %d: gap %d -> %d without skip", i, last, fr.Seq)
					return
				}
				first, last = false, fr.Seq
				if i%4 == 0 {
					time.Sleep(time.Millisecond) // a slow reader
				}
			}
		})
	}
	data := make([]byte, 1000)
	start := time.Now()
	for n := range 3000 {
		h.Publish(&h264.AccessUnit{Data: data, Keyframe: n%10 == 0, Received: start.Add(time.Duration(n) * time.Millisecond)})
		if n%100 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if st := h.Stats(); st.ViewersTotal != 0 {
		t.Fatalf("viewers left: %d", st.ViewersTotal)
	}
}

func TestSince(t *testing.T) {
	h := New(Config{})
	if h.Since(t0) != nil {
		t.Fatal("empty hub returned units")
	}
	f := newFeed(30, 10)
	publishN(h, f, 100) // keyframes 0, 30, 60, 90
	tests := []struct {
		from      time.Time
		wantFirst int
	}{
		{t0.Add(-time.Hour), 0},
		{t0.Add(45 * time.Second / 30), 30},
		{t0.Add(60 * time.Second / 30), 60},
		{t0.Add(time.Hour), 90},
	}
	for _, tc := range tests {
		got := h.Since(tc.from)
		if len(got) != 100-tc.wantFirst || !got[0].Keyframe || !got[0].Received.Equal(t0.Add(time.Duration(tc.wantFirst)*time.Second/30)) {
			t.Errorf("Since(%v): %d units", tc.from, len(got))
		}
	}
}

// TestNotify: a Notify channel is told of every publish (at most one
// pending: the hub never waits for it) and of the close, and of nothing
// once stopped; a viewer's Sub is served by TryNext as by Next.
func TestNotify(t *testing.T) {
	h := New(Config{})
	f := newFeed(30, 100)
	c, other := make(chan struct{}, 1), make(chan struct{}, 1)
	stop := h.Notify(c)
	stopOther := h.Notify(other)
	s := h.Subscribe(SubOptions{Output: "test"})
	defer s.Close()
	publishN(h, f, 3) // does not block on the full channels
	for _, ch := range []chan struct{}{c, other} {
		select {
		case <-ch:
		default:
			t.Fatal("no notification of a publish")
		}
	}
	fr, ok, err := s.TryNext()
	if err != nil || !ok || !fr.Keyframe {
		t.Fatalf("TryNext after the publish: %+v, %v, %v; want the keyframe", fr, ok, err)
	}
	stop()
	publishN(h, f, 1)
	select {
	case <-c:
		t.Fatal("a notification after stop")
	default:
	}
	<-other
	stopOther()
	stopOther() // twice is harmless
	c2 := make(chan struct{}, 1)
	h.Notify(c2)
	h.Close()
	select {
	case <-c2:
	default:
		t.Fatal("no notification of the close")
	}
}
