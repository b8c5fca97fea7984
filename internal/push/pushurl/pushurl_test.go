package pushurl

import (
	"strings"
	"testing"
)

func TestMask(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"rtmp://a.rtmp.youtube.com/live2/abcd-efgh-ijkl", "rtmp://a.rtmp.youtube.com/live2/xxxx"},
		{"rtmps://live.twitch.tv:443/app/live_123_SECRET", "rtmps://live.twitch.tv:443/app/xxxx"},
		{"rtmp://h/live/key?pass=SECRET", "rtmp://h/live/xxxx?pass=xxxx"},
		{"rtsp://user:SECRET@h:8554/pi1", "rtsp://user:xxxx@h:8554/pi1"},
		{"srt://h:9000?streamid=publish:SECRET&passphrase=SECRET", "srt://h:9000?passphrase=xxxx&streamid=xxxx"},
		{"srt://h:9000?latency=1000&passphrase=SECRET&pbkeylen=32", "srt://h:9000?latency=1000&passphrase=xxxx&pbkeylen=32"},
		{"whip+https://customer-x.cloudflarestream.com/0123456789abcdefSECRET/webRTC/publish?token=SECRET",
			"whip+https://customer-x.cloudflarestream.com/xxxx/webRTC/publish?token=xxxx"},
	} {
		u, err := Parse(tc.in)
		if err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		if got := Mask(u); got != tc.want {
			t.Errorf("Mask(%s) = %s, want %s", tc.in, got, tc.want)
		}
		if got := Addr(u); strings.Contains(got, "SECRET") || strings.Contains(got, "@") {
			t.Errorf("Addr(%s) = %s", tc.in, got)
		}
	}
}

func TestSplitRTMP(t *testing.T) {
	for _, tc := range []struct{ in, app, key string }{
		{"rtmp://h/live2/KEY", "live2", "KEY"},
		{"rtmp://h/a/b/KEY?x=1", "a/b", "KEY?x=1"},
		{"rtmp://h/live", "", ""},
		{"rtmp://h/live/", "", ""},
	} {
		u, _ := Parse(tc.in)
		if u == nil {
			continue // Parse refuses the keyless ones
		}
		if app, key := SplitRTMP(u); app != tc.app || key != tc.key {
			t.Errorf("SplitRTMP(%s) = %q, %q", tc.in, app, key)
		}
	}
}

// FuzzMask: whatever the URL, a password that Parse accepted never shows
// in Mask or Addr.
func FuzzMask(f *testing.F) {
	for _, s := range []string{"rtmp://u:pw0rd@h/app/key", "rtsp://u:p%40ss@h:1/x?y=z", "srt://h:1?passphrase=abcdefgh", "whip+https://h/k?token=t"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := Parse(s)
		if err != nil {
			return
		}
		m, a := Mask(u), Addr(u)
		if pw, ok := u.User.Password(); ok && len(pw) >= 6 && !strings.Contains("xxxx", pw) && (strings.Contains(m, pw) || strings.Contains(a, pw)) {
			t.Errorf("password %q shows: %s / %s", pw, m, a)
		}
		for k, vs := range u.Query() {
			for _, v := range vs {
				if len(v) >= 6 && strings.Contains(m, "="+v) && v != "xxxx" {
					t.Errorf("query %s=%q shows: %s", k, v, m)
				}
			}
		}
	})
}
