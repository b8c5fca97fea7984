// Package testfeed runs the test pattern into a hub for tests, the way
// the app feeds one. It is apart from testsupport so that testsrc's own
// tests can use testsupport.
package testfeed

import (
	"context"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/h264"
	"github.com/camfeed/camfeed/internal/hub"
	"github.com/camfeed/camfeed/internal/testsrc"
	"github.com/camfeed/camfeed/internal/testsupport"
)

// Feeds is a fixed set of named hubs; it satisfies the Feeds interface
// that each output package declares.
type Feeds map[string]*hub.Hub

// Hub returns the named feed's hub.
func (f Feeds) Hub(name string) (*hub.Hub, bool) { h, ok := f[name]; return h, ok }

// Names lists the feeds, sorted.
func (f Feeds) Names() []string {
	names := make([]string, 0, len(f))
	for n := range f {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Feed is a hub fed by the test pattern in real time, the way the app
// feeds one: parsed with ingest stamps, published at the live edge.
type Feed struct {
	Hub *hub.Hub
	Gen *testsrc.Generator

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Start runs the test pattern into a new hub until the test ends.
// It waits for the first keyframe, so a viewer can join at once.
func Start(t testing.TB, cfg testsrc.Config, hcfg hub.Config) *Feed {
	t.Helper()
	f, err := New(cfg, hcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

// New is Start without a test: call Close when done.
func New(cfg testsrc.Config, hcfg hub.Config) (*Feed, error) {
	gen, err := testsrc.New(cfg)
	if err != nil {
		return nil, err
	}
	h := hub.New(hcfg)
	ctx, cancel := context.WithCancel(context.Background())
	f := &Feed{Hub: h, Gen: gen, cancel: cancel}
	first := make(chan struct{})
	var once sync.Once
	p := h264.NewParser(h264.ParserConfig{StampIngest: true})
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		_ = gen.Run(ctx, 0, func(nalus [][]byte, _ bool, _ time.Time) error {
			p.WriteAU(nalus, time.Now(), func(au *h264.AccessUnit) {
				h.Publish(au)
				once.Do(func() { close(first) })
			})
			return nil
		})
	}()
	select {
	case <-first:
	case <-time.After(testsupport.Patience):
	}
	return f, nil
}

// Close stops the pattern and closes the hub.
func (f *Feed) Close() {
	f.cancel()
	f.wg.Wait()
	f.Hub.Close()
}

// Live runs the generator in real time until the test ends, handing each
// frame to publish with the moment it was made (as a camera's ingest
// stamp): for tests that feed their own hub and parser.
func Live(t testing.TB, g *testsrc.Generator, publish func(nalus [][]byte, now time.Time)) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		_ = g.Run(ctx, 0, func(nalus [][]byte, _ bool, _ time.Time) error {
			publish(nalus, time.Now())
			return nil
		})
	}()
}
