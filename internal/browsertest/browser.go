// Package browsertest drives a headless Chromium over the DevTools
// protocol, for end-to-end tests of the web viewer on loopback.
//
// It speaks just enough CDP (Target, Page, Runtime) over one WebSocket,
// with raw JSON, so a newer Chromium's new events or enum values cannot
// break it the way they break generated bindings. Tests skip cleanly when
// no Chromium is installed, and fail then when
// CAMFEED_REQUIRE_TOOLS=1.
package browsertest

import (
	"bufio"
	"context"
	"encoding/base64"
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

	"github.com/gorilla/websocket"

	"github.com/camfeed/camfeed/internal/testsupport"
)

// Flags are the launch flags every test browser gets: headless, no
// sandbox (CI runs as root), and nothing that talks to the internet.
var Flags = []string{
	"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
	"--no-first-run", "--disable-background-networking",
	"--disable-component-update", "--disable-sync",
	"--autoplay-policy=no-user-gesture-required",
	// WebRTC on loopback: gather the loopback interface, and show real
	// host addresses instead of mDNS names that the server cannot resolve.
	"--allow-loopback-in-peer-connection",
	"--disable-features=WebRtcHideLocalIpsWithMdns",
	// Keep timers and rendering of background pages running: tests open
	// several pages at once.
	"--disable-background-timer-throttling",
	"--disable-renderer-backgrounding",
	"--disable-backgrounding-occluded-windows",
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
	cmd  *exec.Cmd
	conn *websocket.Conn
	dir  string

	wmu     sync.Mutex // serialises writes to conn
	mu      sync.Mutex
	nextID  int64
	pending map[int64]chan reply
	pages   map[string]*Page // by CDP session id
	done    chan struct{}
	err     error
}

type reply struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

type message struct {
	ID        int64           `json:"id"`
	Method    string          `json:"method"`
	Params    json.RawMessage `json:"params"`
	SessionID string          `json:"sessionId"`
	reply
}

// Launch starts Chromium, or skips the test when there is none. The
// browser is closed when the test ends.
func Launch(t testing.TB, extraFlags ...string) *Browser {
	t.Helper()
	path := Path()
	if path == "" {
		testsupport.Missing(t, "chromium")
	}
	// go test runs packages in parallel; browsers that share two cores
	// render a few frames a second and every latency figure suffers. One
	// browser at a time, across test processes.
	unlock, err := lockMachine()
	if err != nil {
		t.Fatalf("browsertest: %v", err)
	}
	b, err := Start(path, extraFlags...)
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

// Start starts the Chromium at path. Close it when done.
func Start(path string, extraFlags ...string) (*Browser, error) {
	dir, err := os.MkdirTemp("", "camfeed-chromium-")
	if err != nil {
		return nil, err
	}
	args := append(append([]string{}, Flags...), extraFlags...)
	args = append(args, "--user-data-dir="+dir, "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1", "--window-size=1280,720", "about:blank")
	cmd := exec.Command(path, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // Close ends the whole process tree
	stderr, err := cmd.StderrPipe()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start chromium: %w", err)
	}
	b := &Browser{cmd: cmd, dir: dir, pending: map[int64]chan reply{}, pages: map[string]*Page{}, done: make(chan struct{})}
	wsURL := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			if i := strings.Index(line, "ws://"); i >= 0 && strings.Contains(line, "DevTools listening") {
				select {
				case wsURL <- strings.TrimSpace(line[i:]):
				default:
				}
			}
		}
	}()
	var u string
	select {
	case u = <-wsURL:
	case <-time.After(20 * time.Second):
		b.kill()
		return nil, errors.New("chromium did not print its DevTools address within 20 s")
	}
	conn, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		b.kill()
		return nil, fmt.Errorf("connect to chromium: %w", err)
	}
	conn.SetReadLimit(256 << 20) // screenshots
	b.conn = conn
	go b.readLoop()
	return b, nil
}

func (b *Browser) kill() {
	if b.cmd.Process != nil {
		_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
		_ = b.cmd.Wait()
	}
	os.RemoveAll(b.dir)
}

// Close ends the browser and removes its profile.
func (b *Browser) Close() {
	if b.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, _ = b.call(ctx, "", "Browser.close", nil)
		cancel()
		b.conn.Close()
	}
	exited := make(chan struct{})
	go func() {
		select {
		case <-exited:
		case <-time.After(3 * time.Second):
			_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
		}
	}()
	_ = b.cmd.Wait()
	close(exited)
	_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL) // helpers left in the group
	os.RemoveAll(b.dir)
}

func (b *Browser) readLoop() {
	defer close(b.done)
	for {
		var m message
		if err := b.conn.ReadJSON(&m); err != nil {
			b.mu.Lock()
			b.err = err
			for id, ch := range b.pending {
				close(ch)
				delete(b.pending, id)
			}
			b.mu.Unlock()
			return
		}
		if m.ID != 0 {
			b.mu.Lock()
			ch := b.pending[m.ID]
			delete(b.pending, m.ID)
			b.mu.Unlock()
			if ch != nil {
				ch <- m.reply
			}
			continue
		}
		b.mu.Lock()
		p := b.pages[m.SessionID]
		b.mu.Unlock()
		if p != nil {
			p.event(m.Method, m.Params)
		}
	}
}

// call sends one CDP command and waits for its reply.
func (b *Browser) call(ctx context.Context, session, method string, params any) (json.RawMessage, error) {
	ch := make(chan reply, 1)
	b.mu.Lock()
	if b.err != nil {
		b.mu.Unlock()
		return nil, fmt.Errorf("%s: browser gone: %w", method, b.err)
	}
	b.nextID++
	id := b.nextID
	b.pending[id] = ch
	b.mu.Unlock()
	msg := map[string]any{"id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	if session != "" {
		msg["sessionId"] = session
	}
	b.wmu.Lock()
	err := b.conn.WriteJSON(msg)
	b.wmu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	select {
	case r, ok := <-ch:
		if !ok {
			return nil, fmt.Errorf("%s: browser connection closed", method)
		}
		if r.Error != nil {
			return nil, fmt.Errorf("%s: %s (%d)", method, r.Error.Message, r.Error.Code)
		}
		return r.Result, nil
	case <-ctx.Done():
		b.mu.Lock()
		delete(b.pending, id)
		b.mu.Unlock()
		return nil, fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

// Page is one browser tab.
type Page struct {
	b       *Browser
	target  string
	session string
	context string

	mu      sync.Mutex
	console []string
}

// NewPage opens a tab of width x height CSS pixels (0 keeps the window
// size) and navigates it to url. The tab closes when the test ends.
func (b *Browser) NewPage(t testing.TB, url string, width, height int) *Page {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := b.OpenPage(ctx, url, width, height)
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
func (b *Browser) OpenPage(ctx context.Context, url string, width, height int) (*Page, error) {
	// Each page gets its own browser context, hence its own renderer
	// process and main thread: a page busy reading pixels must not delay
	// another page's scripts, as it would in a shared renderer.
	res, err := b.call(ctx, "", "Target.createBrowserContext", map[string]any{"disposeOnDetach": true})
	if err != nil {
		return nil, err
	}
	var bc struct{ BrowserContextID string }
	if err := json.Unmarshal(res, &bc); err != nil {
		return nil, err
	}
	res, err = b.call(ctx, "", "Target.createTarget", map[string]any{"url": "about:blank", "browserContextId": bc.BrowserContextID})
	if err != nil {
		return nil, err
	}
	var tgt struct{ TargetID string }
	if err := json.Unmarshal(res, &tgt); err != nil {
		return nil, err
	}
	res, err = b.call(ctx, "", "Target.attachToTarget", map[string]any{"targetId": tgt.TargetID, "flatten": true})
	if err != nil {
		return nil, err
	}
	var att struct{ SessionID string }
	if err := json.Unmarshal(res, &att); err != nil {
		return nil, err
	}
	p := &Page{b: b, target: tgt.TargetID, session: att.SessionID, context: bc.BrowserContextID}
	b.mu.Lock()
	b.pages[p.session] = p
	b.mu.Unlock()
	for _, m := range []string{"Runtime.enable", "Page.enable"} {
		if _, err := b.call(ctx, p.session, m, nil); err != nil {
			return nil, err
		}
	}
	if width > 0 && height > 0 {
		_, err := b.call(ctx, p.session, "Emulation.setDeviceMetricsOverride", map[string]any{
			"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600,
		})
		if err != nil {
			return nil, err
		}
	}
	if _, err := b.call(ctx, p.session, "Page.navigate", map[string]any{"url": url}); err != nil {
		return nil, err
	}
	return p, nil
}

// Close closes the tab.
func (p *Page) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = p.b.call(ctx, "", "Target.closeTarget", map[string]any{"targetId": p.target})
	_, _ = p.b.call(ctx, "", "Target.disposeBrowserContext", map[string]any{"browserContextId": p.context})
	p.b.mu.Lock()
	delete(p.b.pages, p.session)
	p.b.mu.Unlock()
}

func (p *Page) event(method string, params json.RawMessage) {
	var line string
	switch method {
	case "Runtime.consoleAPICalled":
		var e struct {
			Type string
			Args []struct {
				Value       any
				Description string
			}
		}
		_ = json.Unmarshal(params, &e)
		parts := []string{e.Type + ":"}
		for _, a := range e.Args {
			if a.Value != nil {
				parts = append(parts, fmt.Sprint(a.Value))
			} else {
				parts = append(parts, a.Description)
			}
		}
		line = strings.Join(parts, " ")
	case "Runtime.exceptionThrown":
		var e struct {
			ExceptionDetails struct {
				Text      string
				Exception struct{ Description string }
			}
		}
		_ = json.Unmarshal(params, &e)
		line = "exception: " + e.ExceptionDetails.Text + " " + e.ExceptionDetails.Exception.Description
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
	res, err := p.b.call(ctx, p.session, "Runtime.evaluate", map[string]any{
		"expression": expr, "awaitPromise": true, "returnByValue": true,
	})
	if err != nil {
		return err
	}
	var r struct {
		Result struct {
			Value json.RawMessage
		}
		ExceptionDetails *struct {
			Text      string
			Exception struct{ Description string }
		}
	}
	if err := json.Unmarshal(res, &r); err != nil {
		return err
	}
	if r.ExceptionDetails != nil {
		return fmt.Errorf("eval %q: %s %s", short(expr), r.ExceptionDetails.Text, r.ExceptionDetails.Exception.Description)
	}
	if out == nil || len(r.Result.Value) == 0 {
		return nil
	}
	return json.Unmarshal(r.Result.Value, out)
}

// WaitFor evaluates expr every 50 ms until it is truthy or timeout passes.
func (p *Page) WaitFor(expr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
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
		time.Sleep(50 * time.Millisecond)
	}
}

// Screenshot saves a PNG of the page's viewport to path.
func (p *Page) Screenshot(ctx context.Context, path string) error {
	res, err := p.b.call(ctx, p.session, "Page.captureScreenshot", map[string]any{"format": "png"})
	if err != nil {
		return err
	}
	var r struct{ Data string }
	if err := json.Unmarshal(res, &r); err != nil {
		return err
	}
	png, err := base64.StdEncoding.DecodeString(r.Data)
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
