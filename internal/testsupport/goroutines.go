package testsupport

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// CheckGoroutines fails the test when goroutines started during it
// outlive it (by more than a 10 s grace for them to finish). It prints
// the stacks that mention any of ours, or all of them when ours is empty.
func CheckGoroutines(t testing.TB, ours ...string) {
	base := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(Patience)
		for {
			n := runtime.NumGoroutine()
			if n <= base {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				var shown []string
				for _, g := range strings.Split(string(buf), "\n\n") {
					if len(ours) == 0 {
						shown = append(shown, g)
						continue
					}
					for _, o := range ours {
						if strings.Contains(g, o) {
							shown = append(shown, g)
							break
						}
					}
				}
				t.Errorf("%d goroutines left, %d before:\n%s", n, base, strings.Join(shown, "\n\n"))
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// Patience is how long a test waits for something that must happen: a
// picture to arrive, a client to connect, a goroutine to end. It is a
// functional timeout, far above any real latency, so a busy machine
// does not fail a test; timing is measured elsewhere.
const Patience = 10 * time.Second

// Eventually polls cond every few ms until it holds or Patience runs out.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v", what, Patience)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
