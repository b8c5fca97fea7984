package feed

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/source"
	"github.com/camfeed/camfeed/internal/testsrc"
	"github.com/camfeed/camfeed/internal/testsupport"
)

// fakeSource records when it was started and fails at once, or runs a
// few frames of the test pattern first.
type fakeSource struct {
	mu     sync.Mutex
	starts []time.Time
	frames int
}

func (f *fakeSource) String() string { return "fake" }

func (f *fakeSource) Run(ctx context.Context, sink source.Sink) error {
	f.mu.Lock()
	f.starts = append(f.starts, time.Now())
	f.mu.Unlock()
	if f.frames > 0 {
		g, _ := testsrc.New(testsrc.Config{Width: 64, Height: 64})
		for i := range f.frames {
			nalus, _ := g.Next(time.Now().Add(time.Duration(i) * time.Millisecond))
			sink.WriteAU(nalus)
		}
	}
	return errors.New("fake camera fell over")
}

func (f *fakeSource) gaps() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []time.Duration
	for i := 1; i < len(f.starts); i++ {
		out = append(out, f.starts[i].Sub(f.starts[i-1]))
	}
	return out
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestBackoffGrows: a source that keeps failing is retried after 10, 20,
// 40, 80 ms... capped, and the failures are counted with their reason.
func TestBackoffGrows(t *testing.T) {
	src := &fakeSource{}
	f := New("cam", src, hub.New(hub.Config{}), Options{MinBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond}, quietLog())
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	f.Run(ctx)
	gaps := src.gaps()
	if len(gaps) < 4 {
		t.Fatalf("only %d restarts", len(gaps))
	}
	// Lower bounds only: a loaded machine adds delay, never removes it.
	want := []time.Duration{10, 20, 40, 40}
	for i, w := range want {
		w *= time.Millisecond
		if gaps[i] < w {
			t.Errorf("restart %d after %v, want at least %v", i+1, gaps[i], w)
		}
	}
	st := f.Status()
	src.mu.Lock()
	starts := len(src.starts)
	src.mu.Unlock()
	// The last attempt may have been cut by the deadline, which is no failure.
	if st.Restarts < starts-1 || st.Restarts > starts || st.LastError != "fake camera fell over" || st.State != StateStopped {
		t.Errorf("status %+v", st)
	}
}

// TestBackoffResetsAfterHealthyRun: a run that delivered video for
// HealthyAfter resets the backoff to its minimum.
func TestBackoffResetsAfterHealthyRun(t *testing.T) {
	src := &slowFake{}
	f := New("cam", src, hub.New(hub.Config{}), Options{
		MinBackoff: 10 * time.Millisecond, MaxBackoff: time.Second, HealthyAfter: 50 * time.Millisecond,
	}, quietLog())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	f.Run(ctx)
	src.mu.Lock()
	defer src.mu.Unlock()
	// Runs 1-5 fail at once (backoff 10, 20, 40, 80, 160 ms); run 6 is
	// healthy for 80 ms; the retry after it comes after the minimum again.
	if len(src.starts) < 7 {
		t.Fatalf("only %d starts", len(src.starts))
	}
	before := src.starts[5].Sub(src.ends[4])
	after := src.starts[6].Sub(src.ends[5])
	if before < 160*time.Millisecond || after > before/2 {
		t.Errorf("retry waited %v before the healthy run and %v after it; want the backoff reset", before, after)
	}
}

// slowFake fails at once five times, then runs healthily for 80 ms
// (sending video), then fails at once again.
type slowFake struct {
	mu     sync.Mutex
	starts []time.Time
	ends   []time.Time
}

func (s *slowFake) String() string { return "slow fake" }

func (s *slowFake) Run(ctx context.Context, sink source.Sink) error {
	s.mu.Lock()
	n := len(s.starts)
	s.starts = append(s.starts, time.Now())
	s.mu.Unlock()
	if n == 5 {
		g, _ := testsrc.New(testsrc.Config{Width: 64, Height: 64})
		end := time.Now().Add(80 * time.Millisecond)
		for time.Now().Before(end) {
			nalus, _ := g.Next(time.Now())
			sink.WriteAU(nalus)
			time.Sleep(5 * time.Millisecond)
		}
	}
	s.mu.Lock()
	s.ends = append(s.ends, time.Now())
	s.mu.Unlock()
	return errors.New("fell over")
}

// TestReplace: a replaced source is stopped and the new one starts at
// once, without counting as a failure.
func TestReplace(t *testing.T) {
	first := &blocking{started: make(chan struct{})}
	second := &blocking{started: make(chan struct{})}
	f := New("cam", first, hub.New(hub.Config{}), Options{MinBackoff: time.Hour}, quietLog())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.Run(ctx); close(done) }()
	<-first.started
	f.Replace(second)
	select {
	case <-second.started:
	case <-time.After(5 * time.Second):
		t.Fatal("new source not started")
	}
	if st := f.Status(); st.Restarts != 0 || st.Source != "blocking" {
		t.Errorf("status after replace %+v", st)
	}
	cancel()
	<-done
}

type blocking struct{ started chan struct{} }

func (b *blocking) String() string { return "blocking" }

func (b *blocking) Run(ctx context.Context, _ source.Sink) error {
	close(b.started)
	<-ctx.Done()
	return ctx.Err()
}

// TestReplaceInBackoff: a reload that fixes a failing source is tried at
// once, not after the backoff (up to MaxBackoff, 30 s by default): the
// feed starts from a source that fails, waits out a long backoff, and
// the good source's frames reach the hub within Patience.
func TestReplaceInBackoff(t *testing.T) {
	bad := &fakeSource{}
	h := hub.New(hub.Config{})
	f := New("cam", bad, h, Options{MinBackoff: time.Hour, MaxBackoff: time.Hour}, quietLog())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	testsupport.Eventually(t, "the failing source waits out its backoff", func() bool { return f.Status().State == StateBackoff })
	sub := h.Subscribe(hub.SubOptions{})
	defer sub.Close()
	f.Replace(&fakeSource{frames: 30})
	nctx, ncancel := context.WithTimeout(ctx, testsupport.Patience)
	defer ncancel()
	if _, err := sub.Next(nctx); err != nil {
		t.Fatalf("no frame from the new source: %v (state %s)", err, f.Status().State)
	}
}
