//go:build linux && !race

package source

import (
	"os"
	"testing"
)

// TestQueuedAllocs: asking how many bytes wait in the pipe, which the
// pump does after every read, allocates nothing. (Not under -race; .ci/run
// runs `go test -run Alloc ./...`.)
func TestQueuedAllocs(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if _, err := w.Write(make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	ask := queued(r)
	if ask == nil {
		t.Fatal("queued: nil for a pipe")
	}
	if n, ok := ask(); !ok || n != 100 {
		t.Fatalf("queued = %d, %v; want 100, true", n, ok)
	}
	if a := testing.AllocsPerRun(100, func() { _, _ = ask() }); a != 0 {
		t.Errorf("%v allocations per question, want 0", a)
	}
}
