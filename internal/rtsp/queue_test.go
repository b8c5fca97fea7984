package rtsp

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"

	"github.com/camfeed/camfeed/internal/h264"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/testsupport"
)

// TestUnitsLargerThanTheQueue: gortsplib's per-session queue holds
// writeQueueSize packets, and a viewer's first access unit goes through
// it (over RTSPS every unit does). A keyframe of more packets than that
// must still arrive whole over TCP and RTSPS: the viewer hands it over in
// chunks as the connection takes them. Over UDP the first unit must fit
// the queue: a unit that does gets through.
func TestUnitsLargerThanTheQueue(t *testing.T) {
	idr, p := patternUnits(t, 320, 240)
	unit := func(nalus [][]byte, key bool) *h264.AccessUnit {
		var data []byte
		for _, n := range nalus {
			data = append(append(data, 0, 0, 0, 1), n...)
		}
		au := &h264.AccessUnit{Data: data, Keyframe: key, Received: time.Now()}
		for i, off := 0, 0; i < len(nalus); i++ {
			off += 4
			au.NALUs = append(au.NALUs, data[off:off+len(nalus[i]):off+len(nalus[i])])
			off += len(nalus[i])
		}
		return au
	}
	// The pattern's keyframe, with its slice padded past the queue.
	huge := func(packets int) *h264.AccessUnit {
		nalus := append([][]byte(nil), idr...)
		for i, n := range nalus {
			if h264.TypeOf(n) == h264.NALUTypeIDR {
				nalus[i] = append(bytes.Clone(n), bytes.Repeat([]byte{0x80}, packets*maxPayload)...)
			}
		}
		return unit(nalus, true)
	}

	for _, tc := range []struct {
		name    string
		proto   gortsplib.Protocol
		tls     bool
		packets int
	}{
		{"tcp", gortsplib.ProtocolTCP, false, 3 * writeQueueSize},
		{"rtsps", gortsplib.ProtocolTCP, true, 3 * writeQueueSize},
		{"udp", gortsplib.ProtocolUDP, false, 30}, // a burst well within the client's socket buffer (each datagram takes more of it than its size); 100 overflowed it under -race in CI
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := hub.New(hub.Config{})
			t.Cleanup(h.Close)
			key := huge(tc.packets)
			h.Publish(key)
			cfg := Config{}
			scheme := "rtsp"
			if tc.tls {
				cfg.ServerCert, cfg.ServerKey = writeCert(t)
				scheme = "rtsps"
			}
			s, _ := startServer(t, cfg, newTestFeeds(map[string]*hub.Hub{"cam": h}), nil, nil)
			r := startReader(t, fmt.Sprintf("%s://%s/cam", scheme, s.Addr()), readerOpts{protocol: tc.proto, tls: tc.tls})
			// P units behind it, and the keyframe again every 15 (a viewer
			// that took longer than the lag budget to send it skips to the
			// next one), until the reader has the keyframe and a unit more.
			got := func() (units []received, whole bool) {
				units = r.units()
				for _, u := range units {
					if u.key && len(u.nalus) == len(key.NALUs) {
						whole = true
						for i, n := range u.nalus {
							whole = whole && bytes.Equal(n, key.NALUs[i])
						}
						if !whole {
							t.Fatalf("a keyframe of %d packets arrived with different bytes", tc.packets)
						}
					}
				}
				return units, whole
			}
			deadline := time.Now().Add(3 * testsupport.Patience)
			for i := 1; time.Now().Before(deadline); i++ {
				if units, whole := got(); whole && len(units) > 1 {
					break
				}
				if i%15 == 0 {
					h.Publish(huge(tc.packets))
				} else {
					h.Publish(unit(p, false))
				}
				time.Sleep(33 * time.Millisecond)
			}
			units, whole := got()
			if !whole {
				t.Fatalf("the %d-packet keyframe never arrived whole (%d units arrived)", tc.packets, len(units))
			}
			if tc.proto == gortsplib.ProtocolTCP && !units[0].key {
				t.Errorf("the first unit over %s is not the keyframe", tc.name)
			}
		})
	}
}
