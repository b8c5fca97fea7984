package testsupport

import (
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/camfeed/camfeed/internal/route"
)

// Serve starts an HTTP server on 127.0.0.1, port 0, with the routes that
// register adds, and returns its base URL ("http://127.0.0.1:port"). It
// is closed when the test ends.
func Serve(t testing.TB, register ...func(*route.Mux)) string {
	t.Helper()
	mux := route.Unguarded()
	for _, r := range register {
		r(mux)
	}
	return ServeHandler(t, mux).URL
}

// ServeHandler serves h on 127.0.0.1, port 0, until the test ends.
func ServeHandler(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// Logger returns a debug logger that writes to the test's log. Servers
// log from their own goroutines, possibly after the test is over, when
// testing panics on a Log: those lines are dropped.
func Logger(t testing.TB) *slog.Logger {
	w := &tWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *tWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}
