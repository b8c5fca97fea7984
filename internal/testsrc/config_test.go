package testsrc

import (
	"errors"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		cfg  Config
		want string // "" for valid
	}{
		{Config{}, ""},
		{Config{Width: 1920, Height: 1080, FPS: 60, Intra: 600}, ""},
		{Config{Width: 1920, Height: 1088}, ""},
		{Config{Width: 640, Height: 360}, ""},
		{Config{Width: 64, Height: 64, FPS: 1, Intra: 1}, ""},
		{Config{Width: 176, Height: 144, FPS: 120}, ""},
		{Config{Width: 48}, "testsrc: bad config: width 48 is out of range 64..1920"},
		{Config{Width: 1936}, "testsrc: bad config: width 1936 is out of range 64..1920"},
		{Config{Width: -640}, "testsrc: bad config: width -640 is out of range 64..1920"},
		{Config{Width: 650}, "testsrc: bad config: width 650 is not a multiple of 16"},
		{Config{Height: 56}, "testsrc: bad config: height 56 is out of range 64..1088"},
		{Config{Height: 1096}, "testsrc: bad config: height 1096 is out of range 64..1088"},
		{Config{Height: 482}, "testsrc: bad config: height 482 is not a multiple of 8"},
		{Config{FPS: 121}, "testsrc: bad config: fps 121 is out of range 1..120"},
		{Config{FPS: -1}, "testsrc: bad config: fps -1 is out of range 1..120"},
		{Config{Intra: 601}, "testsrc: bad config: intra 601 is out of range 1..600"},
		{Config{Intra: -5}, "testsrc: bad config: intra -5 is out of range 1..600"},
	}
	for _, c := range cases {
		err := c.cfg.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%+v: unexpected error %v", c.cfg, err)
		case c.want != "" && (err == nil || err.Error() != c.want):
			t.Errorf("%+v: got error %v, want %q", c.cfg, err, c.want)
		case c.want != "" && !errors.Is(err, ErrBadConfig):
			t.Errorf("%+v: error %v does not wrap ErrBadConfig", c.cfg, err)
		}
		if _, nerr := New(c.cfg); (nerr == nil) != (err == nil) {
			t.Errorf("%+v: New error %v, Validate error %v", c.cfg, nerr, err)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	g, err := New(Config{Height: 720, Width: 1280})
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Width: 1280, Height: 720, FPS: 30, Intra: 30}
	if got := g.Config(); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestLevel(t *testing.T) {
	// The level must cover the picture size and macroblock rate (Table
	// A-1) and the stream's bit rate. The last two cases are bound by the
	// sqrt(8*MaxFS) limit on each dimension.
	cases := []struct {
		cfg  Config
		want uint8
	}{
		{Config{Width: 640, Height: 480, FPS: 30}, 30},
		{Config{Width: 1920, Height: 1080, FPS: 30}, 40},
		{Config{Width: 1920, Height: 1080, FPS: 60}, 42},
		{Config{Width: 1280, Height: 720, FPS: 30}, 31},
		{Config{Width: 640, Height: 480, FPS: 120}, 32},
		{Config{Width: 1920, Height: 64, FPS: 5}, 31},
		{Config{Width: 64, Height: 1088, FPS: 5}, 21},
	}
	for _, c := range cases {
		g, err := New(c.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if g.seq.levelIDC != c.want {
			t.Errorf("%+v: level_idc %d, want %d", c.cfg, g.seq.levelIDC, c.want)
		}
	}
	if got := chooseLevel(99, 99, 30, 1e12, 1e12); got != 52 {
		t.Errorf("beyond every level: got %d, want 52", got)
	}
}
