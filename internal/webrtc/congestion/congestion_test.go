package congestion

import (
	"testing"
	"time"
)

// TestCongestion walks a peer through a slow link: full stream, losses
// reported, keyframes only at the delivered rate, then a probe back.
func TestCongestion(t *testing.T) {
	t0 := time.Unix(1000, 0)
	c := New(t0, time.Second)
	now := t0
	step := func(d time.Duration) { now = now.Add(d) }
	// One second of a 1 Mbit/s stream: 30 frames of 4166 bytes, 4 packets each.
	second := func(lostPkts int) {
		for i := 0; i < 30; i++ {
			step(time.Second / 30)
			if d := c.Admit(now, i == 0, 4166, 0); d.Send {
				c.Sent(4, 4166)
			}
		}
		c.Nacked(lostPkts)
	}
	second(0)
	second(0)
	if m, _, _ := c.State(); m != Full {
		t.Fatalf("mode %v after a clean link", m)
	}
	// The browser reports 40 of 120 packets lost, and what it got.
	c.ReceiverReport(0, 0, 1000, now)
	second(40)
	c.ReceiverReport(100, 40, 1000+120, now.Add(time.Second))
	second(40)
	d := c.Admit(now.Add(time.Millisecond), false, 4166, 0)
	mode, rate, switches := c.State()
	if mode != Keyframes || switches != 1 || d.Send {
		t.Fatalf("mode %v, switches %d, send %v: want keyframes only", mode, switches, d.Send)
	}
	if rate < 200e3 || rate > 800e3 {
		t.Errorf("rate estimate %.0f bit/s, want below the 2/3 of 1 Mbit/s that got through", rate)
	}
	// A keyframe goes, paced; the frame after it too; the rest do not.
	step(time.Second)
	k := c.Admit(now, true, 20000, 10*time.Millisecond)
	if !k.Send || k.Pace == 0 {
		t.Errorf("keyframe: %+v", k)
	}
	if d := c.Admit(now, false, 500, 0); !d.Send {
		t.Error("the picture after a keyframe was not sent")
	}
	if d := c.Admit(now, false, 500, 0); d.Send {
		t.Error("a second P picture was sent in keyframe mode")
	}
	// A keyframe that could not arrive fresh is skipped.
	step(time.Second)
	if d := c.Admit(now, true, 20000, 900*time.Millisecond); d.Send {
		t.Error("a stale keyframe was sent")
	}
	// Quiet for the probe time: back to the full stream.
	for i := 0; i < int(firstProbe/time.Second)+2; i++ {
		step(time.Second)
		c.Admit(now, false, 100, 0)
	}
	if m, _, _ := c.State(); m != Full {
		t.Errorf("mode %v after %v without loss, want a probe in full mode", m, firstProbe)
	}
}
