package push_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/push"
	"github.com/camfeed/camfeed/internal/testsupport"
)

func rtmpURL(port int, key string) string {
	return fmt.Sprintf("rtmp://127.0.0.1:%d/live/%s", port, key)
}

// TestRTMPIntoNginx pushes to nginx-rtmp and checks what it recorded.
func TestRTMPIntoNginx(t *testing.T) {
	ng := startNginx(t, freePort(t), "")
	ps := startPush(t, push.Config{}, testLagBase, rtmpURL(ng.Port, "cam"))
	ps.waitFrames(t, 90)
	st := ps.status()
	if st.Bytes == 0 || st.LastError != "" || st.Reconnects != 0 {
		t.Errorf("status %+v: want bytes, no error, no reconnect", st)
	}
	if st.Target != fmt.Sprintf("rtmp://127.0.0.1:%d/live/xxxx", ng.Port) {
		t.Errorf("target %q: want the stream key masked", st.Target)
	}
	ps.stop()
	if st := ps.status(); st.State != push.StateStopped {
		t.Errorf("state after stop %q", st.State)
	}
	ng.stop()
	checkRecording(t, filepath.Join(ng.Dir, "cam.flv"))
	if strings.Contains(ps.Log.String(), "/live/cam") {
		t.Errorf("the stream key is in the logs:\n%s", ps.Log)
	}
}

// TestRTMPTargetComesUpLater: nothing listens at first; the push retries
// and goes live when the server comes up.
func TestRTMPTargetComesUpLater(t *testing.T) {
	t.Parallel() // waits on backoff timers, not the CPU; no goroutine check
	needNginx(t)
	port := freePort(t)
	ps := startPush(t, push.Config{}, testLagBase, rtmpURL(port, "cam"))
	testsupport.Eventually(t, "a refused connection in the status", func() bool {
		return strings.Contains(ps.status().LastError, "connection refused")
	})
	ng := startNginx(t, port, "")
	ps.waitFrames(t, 60)
	ps.stop()
	ng.stop()
	checkRecording(t, filepath.Join(ng.Dir, "cam.flv"))
	if !strings.Contains(ps.Log.String(), fmt.Sprintf("push rtmp://127.0.0.1:%d/live/xxxx: nothing listens there (connection refused)", port)) {
		t.Errorf("no line about the refused connection:\n%s", ps.Log)
	}
}

// TestRTMPTargetDiesMidStream: the server is killed while live; the push
// reconnects to the new one and starts it at a keyframe.
func TestRTMPTargetDiesMidStream(t *testing.T) {
	testsupport.CheckGoroutines(t, "internal/push", "gortmplib")
	port := freePort(t)
	ng := startNginx(t, port, "")
	ps := startPush(t, push.Config{}, testLagBase, rtmpURL(port, "cam"))
	ps.waitFrames(t, 60)
	ng.kill()
	testsupport.Eventually(t, "the push to notice", func() bool { return ps.status().State != push.StateLive })
	ng2 := startNginx(t, port, "")
	ps.waitFrames(t, 60)
	if st := ps.status(); st.Reconnects == 0 {
		t.Errorf("status %+v: want a reconnect counted", st)
	}
	ps.stop()
	ng2.stop()
	checkRecording(t, filepath.Join(ng2.Dir, "cam.flv"))
}

// TestRTMPWrongKey: the server refuses the key (on_publish answers 403):
// a clear error, and a slow, growing retry rather than a hot loop.
func TestRTMPWrongKey(t *testing.T) {
	t.Parallel() // waits on backoff timers, not the CPU; no goroutine check
	var attempts atomic.Int32
	auth := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		http.Error(w, "no", http.StatusForbidden)
	}))
	t.Cleanup(auth.Close)
	ng := startNginx(t, freePort(t), auth.URL+"/publish")
	ps := startPush(t, push.Config{}, testLagBase, rtmpURL(ng.Port, "wrongkey"))
	// 1 s doubling: attempts at 0, 1, 3, 7 s; a hot loop would make
	// hundreds.
	testsupport.Eventually(t, "three attempts", func() bool { return attempts.Load() >= 3 })
	time.Sleep(2 * time.Second)
	if n := attempts.Load(); n > 5 {
		t.Errorf("%d attempts in about 5 s: want a growing backoff", n)
	}
	st := ps.status()
	if !strings.Contains(st.LastError, "stream key rejected?") || st.State == push.StateLive {
		t.Errorf("status %+v: want the stream key suspected", st)
	}
	want := fmt.Sprintf("push rtmp://127.0.0.1:%d/live/xxxx: the server closed the connection: stream key rejected?", ng.Port)
	if logs := ps.Log.String(); !strings.Contains(logs, want) || strings.Contains(logs, "wrongkey") {
		t.Errorf("logs: want %q and no stream key:\n%s", want, logs)
	}
}
