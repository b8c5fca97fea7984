package whip

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/push/whip/whiptest"
	"github.com/camfeed/camfeed/internal/testsrc"
	"github.com/camfeed/camfeed/internal/testsupport"
	"github.com/camfeed/camfeed/internal/testsupport/testfeed"
)

var small = testsrc.Config{Width: 320, Height: 240, FPS: 30, Intra: 30}

const token = "s3cret-token-value"

func dialTest(t testing.TB, u *url.URL, params hub.Params, opt Options) (*Writer, error) {
	ctx, cancel := context.WithTimeout(context.Background(), testsupport.Patience)
	defer cancel()
	opt.Log = testsupport.Logger(t)
	if opt.Timeout == 0 {
		opt.Timeout = 3 * time.Second
	}
	return Dial(ctx, u, params, opt)
}

func TestPushToPionReceiver(t *testing.T) {
	testsupport.CheckGoroutines(t, "push/whip", "pion")
	units, params := testfeed.Pattern(t, small, 60)
	r := whiptest.Start(t, token)
	w, err := dialTest(t, r.URL("?token="+token), params, Options{})
	if err != nil {
		t.Fatal(err)
	}
	testfeed.Push(t, w, units, 0, small.FPS)
	// The sample builder gives out a picture when the next one starts:
	// wait for all but the last.
	testsupport.Eventually(t, "the pictures to arrive", func() bool {
		_, stamps, _ := r.Received()
		return len(stamps) >= len(units)-1
	})
	if err := w.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	data, stamps, deleted := r.Received()
	if len(deleted) != 1 || deleted[0] != "/whip/session/1" {
		t.Errorf("DELETEs: %q, want the session's Location once", deleted)
	}
	// One complete offer: send-only H.264 of the feed's own profile, its
	// candidates in it (non-trickle), loopback ones only for a server on
	// this machine.
	offer := r.Offers()[0]
	for _, want := range []string{"a=sendonly", "packetization-mode=1", "profile-level-id=" + params.Info.ProfileLevelID(), "a=candidate:"} {
		if !strings.Contains(offer, want) {
			t.Errorf("the offer has no %q:\n%s", want, offer)
		}
	}
	for _, line := range strings.Split(offer, "\n") {
		if f := strings.Fields(line); strings.HasPrefix(line, "a=candidate:") && len(f) > 4 && !net.ParseIP(f[4]).IsLoopback() {
			t.Errorf("a candidate off loopback: %s", line)
		}
	}
	got := testfeed.Units(data)
	testfeed.CheckStream(t, "whip", got) // first a keyframe with SPS and PPS, no gaps
	if stderr, frames := testsupport.DecodeAnnexB(t, data); stderr != "" || frames < len(units)-2 {
		t.Errorf("ffmpeg decoded %d frames of %d: %s", frames, len(units), stderr)
	}
	// RTP time is the caller's PTS on the 90 kHz clock: one frame apart.
	for i := 1; i < len(stamps); i++ {
		if d := stamps[i] - stamps[i-1]; d != 90000/uint32(small.FPS) {
			t.Fatalf("RTP timestamps %d and %d are %d apart, want %d", i-1, i, d, 90000/small.FPS)
		}
	}
}

func TestWrongToken(t *testing.T) {
	testsupport.CheckGoroutines(t, "push/whip", "pion")
	_, params := testfeed.Pattern(t, small, 1)
	r := whiptest.Start(t, token)
	for _, tc := range []struct {
		name  string
		query string
		opt   string
		want  string
	}{
		{"query", "?token=not-the-token", "", "the server refused the token (HTTP 401)"},
		{"option", "", "not-the-token", "the server refused the token (HTTP 401)"},
		{"option wins", "?token=" + token, "not-the-token", "the server refused the token (HTTP 401)"},
		{"none", "", "", "the server refused the token (HTTP 401): it wants one: add ?token= or the token setting"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := dialTest(t, r.URL(tc.query), params, Options{Token: tc.opt})
			if !errors.Is(err, ErrRefused) {
				t.Fatalf("err = %v, want ErrRefused", err)
			}
			if want := "whip+" + r.Base + "/whip: " + tc.want; err.Error() != want {
				t.Errorf("err = %q, want %q", err, want)
			}
		})
	}
}

func TestNoServer(t *testing.T) {
	testsupport.CheckGoroutines(t, "push/whip", "pion")
	_, params := testfeed.Pattern(t, small, 1)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	u, _ := url.Parse("whip+http://" + addr + "/whip?token=" + token)
	_, err = dialTest(t, u, params, Options{})
	if err == nil || !strings.Contains(err.Error(), "cannot reach the server") || strings.Contains(err.Error(), token) {
		t.Fatalf("err = %v, want a plain 'cannot reach the server' without the token", err)
	}
	t.Log(err)
}

// The server ends the session: WriteUnit fails (the framework then
// reconnects), and Close still returns.
func TestServerGone(t *testing.T) {
	testsupport.CheckGoroutines(t, "push/whip", "pion")
	units, params := testfeed.Pattern(t, small, 30)
	r := whiptest.Start(t, token)
	w, err := dialTest(t, r.URL(""), params, Options{Token: token, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	testfeed.Push(t, w, units[:10], 0, small.FPS)
	r.CloseAll()
	err = testfeed.PushUntilError(t, w, units, 10, small.FPS)
	if !errors.Is(err, ErrGone) {
		t.Errorf("err = %v, want ErrGone", err)
	}
	t.Logf("after the server left: %v", err)
}

// The server answers, but no media path comes up: Dial says so in
// words within its timeout, and DELETEs the session it was given.
func TestNoMediaPath(t *testing.T) {
	testsupport.CheckGoroutines(t, "push/whip", "pion")
	_, params := testfeed.Pattern(t, small, 1)
	r := whiptest.StartWith(t, whiptest.Options{Token: token, Mute: true})
	_, err := dialTest(t, r.URL(""), params, Options{Token: token, Timeout: time.Second})
	if !errors.Is(err, ErrNoConnection) {
		t.Fatalf("err = %v, want ErrNoConnection", err)
	}
	t.Log(err)
	if _, _, deleted := r.Received(); len(deleted) != 1 {
		t.Errorf("DELETEs: %q, want the session's", deleted)
	}
}

// The framework may Close from another goroutine to stop a push: the
// writes then fail at once, and nothing is left running.
func TestCloseWhileWriting(t *testing.T) {
	testsupport.CheckGoroutines(t, "push/whip")
	units, params := testfeed.Pattern(t, small, 30)
	r := whiptest.Start(t, token)
	w, err := dialTest(t, r.URL(""), params, Options{Token: token})
	if err != nil {
		t.Fatal(err)
	}
	testfeed.CloseWhileWriting(t, w, units, small.FPS)
}
