package rtsp

import (
	"testing"
	"time"
)

func TestClock(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }
	type unit struct {
		received, sent int // ms from base
		catchup        bool
		wantMS         int // ms from the session's origin
	}
	for _, tc := range []struct {
		name  string
		units []unit
	}{
		{"live only keeps the camera's spacing", []unit{
			{0, 1, false, -1}, {33, 34, false, 32}, {67, 70, false, 66}, {100, 101, false, 99},
		}},
		{"a cached GOP is compressed to 1 ms steps at join", []unit{
			{-900, 0, true, 0}, {-867, 0, true, 1}, {-833, 1, true, 2}, {-800, 1, true, 3},
			{33, 34, false, 33}, {67, 68, false, 67},
		}},
		{"a live unit received during the burst follows it", []unit{
			{-500, 0, true, 0}, {-467, 2, true, 2}, {1, 3, false, 3}, {33, 35, false, 33},
		}},
		{"jitter that would go backwards is clamped", []unit{
			{0, 0, false, 0}, {33, 33, false, 33}, {33, 40, false, 34}, {66, 70, false, 66},
		}},
		{"a skip forward keeps real time", []unit{
			{0, 0, false, 0}, {33, 33, false, 33}, {2033, 2034, false, 2033},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := clock{initial: 4000000000} // wraps: timestamps are modulo 2^32
			var origin time.Time
			var prev uint32
			for i, u := range tc.units {
				ts, ntp := c.stamp(at(u.received), at(u.sent), u.catchup)
				if i == 0 {
					origin = at(u.sent)
				}
				want := uint32(int64(c.initial) + int64(u.wantMS)*90)
				if ts != want {
					t.Errorf("unit %d: RTP time %d, want %d (%+d ms)", i, ts, want, u.wantMS)
				}
				if d := ntp.Sub(origin); d != time.Duration(u.wantMS)*time.Millisecond {
					t.Errorf("unit %d: NTP %v from origin, want %d ms", i, d, u.wantMS)
				}
				if i > 0 && int32(ts-prev) <= 0 {
					t.Errorf("unit %d: RTP time did not move forward", i)
				}
				prev = ts
			}
		})
	}
}

func TestTicks(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want int64
	}{
		{0, 0},
		{time.Second, 90000},
		{time.Millisecond, 90},
		{-time.Second, -90000},
		{1500 * time.Microsecond, 135},
		{10 * 24 * time.Hour, 10 * 24 * 3600 * 90000}, // d*90000 would overflow int64
	} {
		if got := ticks(tc.d); got != tc.want {
			t.Errorf("ticks(%v) = %d, want %d", tc.d, got, tc.want)
		}
	}
}
