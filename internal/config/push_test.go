package config

import (
	"io"
	"strings"
	"testing"
)

func TestPushTargets(t *testing.T) {
	file := writeFile(t, `
feeds:
  cam:
    source: test
    push:
      - rtmp://a.rtmp.youtube.com/live2/KEY1
      - url: whip+https://example.com/whip/abc
        token: TOKEN
`)
	c, err := Load([]string{"--config", file, "--push", "srt://10.0.0.9:9000?streamid=#!::r=live/cam,m=publish"},
		[]string{"CAMFEED_PUSH=rtsp://h/a rtsps://h/b"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range c.Feeds[DefaultFeed].Push {
		got = append(got, p.URL+"|"+p.Token)
	}
	want := "rtmp://a.rtmp.youtube.com/live2/KEY1| whip+https://example.com/whip/abc|TOKEN rtsp://h/a| rtsps://h/b| srt://10.0.0.9:9000?streamid=#!::r=live/cam,m=publish|"
	if strings.Join(got, " ") != want {
		t.Errorf("push targets:\n got %s\nwant %s", strings.Join(got, " "), want)
	}
}

// Push errors are tested word for word, and never repeat a secret.
func TestPushErrors(t *testing.T) {
	tests := []struct {
		name, file string
		args       []string
		want       string
	}{
		{"scheme", "", []string{"--push", "http://host/x"},
			`invalid config: feeds.cam.push[0]: bad push URL: http:// is not one of rtmp, rtmps, rtsp, rtsps, srt, whip+http, whip+https`},
		{"no key", "", []string{"--push", "rtmp://host:1935/live"},
			`invalid config: feeds.cam.push[0]: bad push URL: rtmp://host:1935: needs an app and a stream key, as in rtmp://host/app/streamkey`},
		{"srt port", "", []string{"--push", "srt://host?passphrase=SECRET"},
			`invalid config: feeds.cam.push[0]: bad push URL: srt://host: needs a port, as in srt://host:port?streamid=...`},
		{"no host", "", []string{"--push", "rtsp:///x"},
			`invalid config: feeds.cam.push[0]: bad push URL: rtsp:// has no host`},
		{"token not whip", "feeds:\n  cam:\n    source: test\n    push:\n      - url: rtmp://u:SECRET@h/app/KEY\n        token: T\n", nil,
			`invalid config: feeds.cam.push[0]: token is for whip+http(s) targets only, not rtmp://u:xxxx@h/app/xxxx`},
		{"unknown key", "feeds:\n  cam:\n    source: test\n    push:\n      - url: rtmp://h/app/KEY\n        key: x\n", nil,
			`config FILE: line 6: feeds.cam.push[0].key: unknown key "key" (a push target has url and token)`},
		{"not a URL", "", []string{"--push", "rtmp://h:SECRET/app/KEY"},
			`invalid config: feeds.cam.push[0]: bad push URL: not a URL such as rtmp://host/app/streamkey`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			var file string
			if tc.file != "" {
				file = writeFile(t, tc.file)
				args = append([]string{"--config", file}, args...)
			}
			_, err := Load(args, nil, io.Discard)
			if err == nil {
				t.Fatalf("no error; want %s", tc.want)
			}
			got := err.Error()
			if file != "" {
				got = strings.ReplaceAll(got, file, "FILE")
			}
			if got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
			if strings.Contains(got, "SECRET") || strings.Contains(got, "KEY") {
				t.Errorf("a secret is in the error: %s", got)
			}
		})
	}
}
