// Package browsertest drives a headless Chromium with chromedp, for
// end-to-end tests of the web viewer on loopback. Tests skip when no
// Chromium is installed, and fail then when CAMFEED_REQUIRE_TOOLS=1.
package browsertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/camfeed/camfeed/internal/testsupport"
)

// Flags are the launch flags every test browser gets, beyond chromedp's
// defaults for automation (headless, no first run, no background
// networking, no sync, ...): no sandbox (CI runs as root), autoplay, and
// WebRTC on loopback.
var Flags = []chromedp.ExecAllocatorOption{
	chromedp.NoSandbox,
	chromedp.DisableGPU,
	chromedp.Flag("disable-quic", true),
	chromedp.Flag("disable-component-update", true),
	chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
	// WebRTC on loopback: gather the loopback interface, and show real
	// host addresses instead of mDNS names that the server cannot resolve.
	chromedp.Flag("allow-loopback-in-peer-connection", true),
	chromedp.Flag("disable-features", "Translate,BlinkGenPropertyTrees,WebRtcHideLocalIpsWithMdns"),
	// Keep timers and rendering of background pages running: tests open
	// several pages at once (chromedp's defaults set these too).
	chromedp.Flag("disable-background-timer-throttling", true),
	chromedp.Flag("disable-renderer-backgrounding", true),
	chromedp.Flag("disable-backgrounding-occluded-windows", true),
	chromedp.WindowSize(1280, 720),
}

// Path returns the Chromium binary to use: $CHROMIUM, else the first of
// the usual names found, else "".
func Path() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Browser is one Chromium process with a fresh profile.
type Browser struct {
	ctx    context.Context // chromedp's browser context
	cancel context.CancelFunc
}

// Launch starts Chromium, or skips the test when there is none. The
// browser is closed when the test ends.
func Launch(t testing.TB, extra ...chromedp.ExecAllocatorOption) *Browser {
	t.Helper()
	path := Path()
	if path == "" {
		testsupport.Missing(t, "chromium")
	}
	// go test runs packages in parallel; browsers that share two cores
	// render a few frames a second. One browser at a time, across test
	// processes.
	unlock, err := lockMachine()
	if err != nil {
		t.Fatalf("browsertest: %v", err)
	}
	b, err := Start(path, extra...)
	if err != nil {
		unlock()
		t.Fatalf("browsertest: %v", err)
	}
	t.Cleanup(func() {
		b.Close()
		unlock()
	})
	return b
}

// lockMachine takes an exclusive lock shared by every test process on
// the machine, waiting for it.
func lockMachine() (func(), error) {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "camfeed-browsertest.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// Start starts the Chromium at path with a fresh profile (chromedp makes
// and removes it). Close it when done.
func Start(path string, extra ...chromedp.ExecAllocatorOption) (*Browser, error) {
	opts := append(append(append([]chromedp.ExecAllocatorOption{}, chromedp.DefaultExecAllocatorOptions[:]...), Flags...), extra...)
	opts = append(opts, chromedp.ExecPath(path))
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, bcancel := chromedp.NewContext(actx)
	// The first Run starts the browser, and binds its life to its context:
	// no timeout there.
	if err := chromedp.Do(bctx); err != nil {
		bcancel()
		acancel()
		return nil, fmt.Errorf("start chromium: %w", err)
	}
	return &Browser{ctx: bctx, cancel: func() { bcancel(); acancel() }}, nil
}

// Close ends the browser (chromedp kills it and removes its profile).
func (b *Browser) Close() {
	_ = chromedp.Cancel(b.ctx)
	b.cancel()
}

// Page is one browser tab, in its own browser context.
type Page struct {
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	console []string
}

// NewPage opens a tab of width x height CSS pixels (0 keeps the window
// size) and navigates it to url. The tab closes when the test ends.
func (b *Browser) NewPage(t testing.TB, url string, width, height int) *Page {
	t.Helper()
	p, err := b.OpenPage(url, width, height)
	if err != nil {
		t.Fatalf("browsertest: open %s: %v", url, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, l := range p.Console() {
				t.Logf("console %s: %s", url, l)
			}
		}
		p.Close()
	})
	return p
}

// OpenPage is NewPage without a test.
func (b *Browser) OpenPage(url string, width, height int) (*Page, error) {
	// Each page gets its own browser context, hence its own renderer
	// process and main thread: a page busy reading pixels must not delay
	// another page's scripts, as it would in a shared renderer.
	p := &Page{}
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext(), chromedp.WithListener(p.event))
	p.ctx, p.cancel = ctx, cancel
	// The first Run makes the tab, for as long as ctx lives.
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		return nil, err
	}
	steps := []chromedp.Action[chromedp.Void]{}
	if width > 0 && height > 0 {
		steps = append(steps, chromedp.EmulateViewport(int64(width), int64(height)))
	}
	steps = append(steps, chromedp.Navigate(url))
	nctx, ncancel := context.WithTimeout(ctx, 3*testsupport.Patience)
	defer ncancel()
	if err := chromedp.Do(nctx, steps...); err != nil {
		cancel()
		return nil, err
	}
	return p, nil
}

// Close closes the tab and its browser context.
func (p *Page) Close() { p.cancel() }

func (p *Page) event(ev any) {
	var line string
	switch e := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		parts := []string{string(e.Type) + ":"}
		for _, a := range e.Args {
			if a != nil && len(a.Value) > 0 {
				parts = append(parts, string(a.Value))
			} else if a != nil {
				parts = append(parts, a.Description)
			}
		}
		line = strings.Join(parts, " ")
	case *runtime.EventExceptionThrown:
		line = "exception: " + e.ExceptionDetails.Text
		if e.ExceptionDetails.Exception != nil {
			line += " " + e.ExceptionDetails.Exception.Description
		}
	default:
		return
	}
	p.mu.Lock()
	if len(p.console) < 1000 {
		p.console = append(p.console, time.Now().Format("15:04:05.000 ")+line)
	}
	p.mu.Unlock()
}

// Console returns the page's console messages and uncaught exceptions so far.
func (p *Page) Console() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.console...)
}

// Eval evaluates a JavaScript expression in the page, awaiting it when it
// is a promise, and decodes its JSON value into out (which may be nil).
func (p *Page) Eval(ctx context.Context, expr string, out any) error {
	ctx, cancel := mergeCancel(p.ctx, ctx)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		return fmt.Errorf("eval %q: %w", short(expr), err)
	}
	if out == nil || len(raw) == 0 {
		return nil
	}
	return json.Unmarshal(raw, out)
}

// mergeCancel returns a context of the page (chromedp finds its target
// there) that also ends with ctx.
func mergeCancel(page, ctx context.Context) (context.Context, context.CancelFunc) {
	m, cancel := context.WithCancelCause(page)
	stop := context.AfterFunc(ctx, func() { cancel(context.Cause(ctx)) })
	if d, ok := ctx.Deadline(); ok {
		var dcancel context.CancelFunc
		m, dcancel = context.WithDeadline(m, d)
		return m, func() { dcancel(); stop(); cancel(nil) }
	}
	return m, func() { stop(); cancel(nil) }
}

// WaitFor evaluates expr every 50 ms until it is truthy or timeout passes.
func (p *Page) WaitFor(expr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		ctx, cancel := context.WithTimeout(context.Background(), testsupport.Patience)
		var ok bool
		last = p.Eval(ctx, "!!("+expr+")", &ok)
		cancel()
		if last == nil && ok {
			return nil
		}
		if time.Now().After(deadline) {
			if last != nil {
				return fmt.Errorf("waiting for %s: %w", short(expr), last)
			}
			return fmt.Errorf("waiting for %s: still false after %v", short(expr), timeout)
		}
		if errors.Is(p.ctx.Err(), context.Canceled) {
			return fmt.Errorf("waiting for %s: page closed", short(expr))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Screenshot saves a PNG of the page's viewport to path.
func (p *Page) Screenshot(ctx context.Context, path string) error {
	ctx, cancel := mergeCancel(p.ctx, ctx)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, png, 0o644)
}

// ArtifactDir is where tests keep what a person should look at
// (screenshots): $CAMFEED_ARTIFACTS, else camfeed-artifacts in the
// system temp directory. It is never inside the repository.
func ArtifactDir() string {
	if d := os.Getenv("CAMFEED_ARTIFACTS"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "camfeed-artifacts")
}

func short(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}
