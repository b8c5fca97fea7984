package source

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/testsrc"
)

// keySink counts the IDR access units a source produces.
type keySink struct {
	recSink
	mu   sync.Mutex
	keys int
}

func (k *keySink) WriteAU(nalus [][]byte) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, n := range nalus {
		if len(n) > 0 && n[0]&0x1f == 5 {
			k.keys++
			return
		}
	}
}

func (k *keySink) count() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.keys
}

// TestTestKeyframeRequest: the test pattern makes a keyframe when asked,
// long before its GOP would, and at most one per keyframeEvery however
// often it is asked.
func TestTestKeyframeRequest(t *testing.T) {
	var src KeyframeRequester = &Test{Config: testsrc.Config{Width: 160, Height: 128, Intra: 600}}
	src.RequestKeyframe() // not running: nothing to ask, no panic
	sink := &keySink{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.(*Test).Run(ctx, sink) }()
	defer func() { cancel(); <-done }()
	wait := func(n int) bool {
		deadline := time.Now().Add(5 * time.Second)
		for sink.count() < n && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		return sink.count() >= n
	}
	if !wait(1) {
		t.Fatal("no first keyframe")
	}
	time.Sleep(keyframeEvery)
	for range 10 {
		src.RequestKeyframe()
	}
	if !wait(2) {
		t.Fatal("no keyframe after a request (GOP 20 s)")
	}
	time.Sleep(keyframeEvery / 2)
	if n := sink.count(); n != 2 {
		t.Errorf("%d keyframes after 10 requests at once, want 1 more than the first", n-1)
	}
	time.Sleep(keyframeEvery)
	src.RequestKeyframe()
	if !wait(3) {
		t.Error("no keyframe after a request once the rate limit passed")
	}
}
