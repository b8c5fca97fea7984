package app

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/auth"
	"github.com/camfeed/camfeed/internal/config"
	"github.com/camfeed/camfeed/internal/push"
	"github.com/camfeed/camfeed/internal/testsupport"
	"github.com/camfeed/camfeed/internal/testsupport/testfeed"
)

// receiver is a camfeed whose feed "cam" takes an RTSP publisher (user
// pub, password pw).
func receiver(t *testing.T) *testApp {
	return startApp(t, func(c *config.Config) {
		c.RTSP = "127.0.0.1:0"
		c.RTSPTransports = []string{"tcp"}
		c.Feeds[config.DefaultFeed].Source = "publish"
		c.Users = []auth.User{{Name: "pub", Password: "plain:pw", Permissions: []string{"publish:cam", "read"}}}
		yes := true
		c.AnonymousRead = &yes
	})
}

// pushStatus reads the default feed's pushes from /api/v1/status.
func pushStatus(t *testing.T, ta *testApp) []push.Status {
	t.Helper()
	resp, err := http.Get(ta.url("/api/v1/status"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct {
		Feeds []struct {
			Name  string `json:"name"`
			Extra struct {
				Push []push.Status `json:"push"`
			} `json:"extra"`
		} `json:"feeds"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	for _, f := range v.Feeds {
		if f.Name == config.DefaultFeed {
			return f.Extra.Push
		}
	}
	return nil
}

// TestPushRTSPIntoCamfeed: one camfeed pushes (RTSP ANNOUNCE/RECORD) into
// another's publish source, configured with --push as a user would; the
// second one's viewers get a clean stream, and the first shows the push
// in its status and metrics with the password masked.
// Not parallel: it runs two camfeeds, and the parallel tests of this
// package judge latency on a shared machine.
func TestPushRTSPIntoCamfeed(t *testing.T) {
	recv := receiver(t)
	target := "rtsp://pub:pw@" + recv.addrs["rtsp"].String() + "/cam"
	var send *testApp
	cfg, err := config.Load([]string{"--http", "127.0.0.1:0", "--rtsp", "off", "--webrtc", "off", "--source", "test",
		"--width", "320", "--height", "240", "--push", target}, nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	send = startApp(t, func(c *config.Config) { *c = *cfg })
	recv.waitFrames(t, config.DefaultFeed, 60)

	resp, _ := httpGet(t, recv.url("/stream.h264"), time.Minute)
	rec := &recorder{}
	readUnits(t, resp.Body, 60, rec)
	testfeed.CheckStream(t, "the receiver's viewer", rec.units())
	if errs, frames := testsupport.DecodeAnnexB(t, rec.whole()); errs != "" || frames < 30 {
		t.Errorf("decoding the receiver's stream: %d frames, %s", frames, errs)
	}

	var ps []push.Status
	testsupport.Eventually(t, "the push live in the status", func() bool {
		ps = pushStatus(t, send)
		return len(ps) == 1 && ps[0].State == push.StateLive && ps[0].Frames > 0
	})
	wantTarget := "rtsp://pub:xxxx@" + recv.addrs["rtsp"].String() + "/cam"
	if ps[0].Target != wantTarget || ps[0].Bytes == 0 {
		t.Errorf("status %+v: want target %s and bytes", ps[0], wantTarget)
	}
	mresp, err := http.Get(send.url("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	want := `camfeed_push_state{feed="cam",state="live",target="` + wantTarget + `"} 1`
	if !strings.Contains(string(body), want) || !strings.Contains(string(body), "camfeed_push_frames_total") {
		t.Errorf("metrics: want %s", want)
	}
	if strings.Contains(string(body), ":pw@") || strings.Contains(send.logs.String(), ":pw@") {
		t.Error("the password is in the metrics or the logs")
	}
	// A sender on the receiver's own session list: one publisher.
	if n := len(recv.door.Sessions(config.DefaultFeed)); n < 1 {
		t.Errorf("receiver sessions %d", n)
	}
}

// TestPushRTSPWrongPassword: the receiver refuses the credentials; the
// push says so in words and retries slowly.
func TestPushRTSPWrongPassword(t *testing.T) {
	recv := receiver(t)
	target := "rtsp://pub:wrong@" + recv.addrs["rtsp"].String() + "/cam"
	send := startApp(t, func(c *config.Config) {
		c.Feeds[config.DefaultFeed].Width, c.Feeds[config.DefaultFeed].Height = 320, 240
		c.Feeds[config.DefaultFeed].Push = []config.PushTarget{{URL: target}}
	})
	var ps []push.Status
	testsupport.Eventually(t, "a refusal in the status", func() bool {
		ps = pushStatus(t, send)
		return len(ps) == 1 && ps[0].Reconnects >= 1
	})
	if !strings.Contains(ps[0].LastError, "401 Unauthorized") || ps[0].State == push.StateLive {
		t.Errorf("status %+v: want the refused password in words", ps[0])
	}
	want := "push rtsp://pub:xxxx@" + recv.addrs["rtsp"].String() + "/cam: the server refused the user name or password (401 Unauthorized)"
	if logs := send.logs.String(); !strings.Contains(logs, want) || strings.Contains(logs, "wrong") {
		t.Errorf("logs: want %q, and no password", want)
	}
}
