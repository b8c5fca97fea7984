package testfeed

import (
	"strings"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/h264"
	"github.com/camfeed/camfeed/internal/testsupport"
)

// UnitWriter is a push protocol's writer, as the push framework drives it.
type UnitWriter interface {
	WriteUnit(au *h264.AccessUnit, pts time.Duration) error
	Close() error
}

// Push writes units to w in real time at fps, unit i (counting from
// from) with PTS i frame periods, and fails the test on an error.
func Push(t testing.TB, w UnitWriter, units []*h264.AccessUnit, from, fps int) {
	t.Helper()
	period := time.Second / time.Duration(fps)
	for i, au := range units {
		if err := w.WriteUnit(au, time.Duration(from+i)*period); err != nil {
			t.Fatalf("unit %d: %v", from+i, err)
		}
		time.Sleep(period)
	}
}

// PushUntilError goes on writing units (round and round, in real time,
// PTS from frame from on) until WriteUnit fails, and returns its error:
// for tests whose peer went away. It fails the test when WriteUnit still
// succeeds after testsupport.Patience, closing w to end the writes.
func PushUntilError(t testing.TB, w UnitWriter, units []*h264.AccessUnit, from, fps int) error {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		period := time.Second / time.Duration(fps)
		for i := from; ; i++ {
			if err := w.WriteUnit(units[i%len(units)], time.Duration(i)*period); err != nil {
				errc <- err
				return
			}
			time.Sleep(period)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-time.After(testsupport.Patience):
		w.Close()
		<-errc
		t.Fatalf("WriteUnit kept succeeding %v after the peer went away", testsupport.Patience)
		return nil
	}
}

// CloseWhileWriting writes units to w and closes it from another
// goroutine meanwhile, as a push framework stopping a push does: the
// writes must end with an error whose text ends in ": closed", and a
// second Close must return.
func CloseWhileWriting(t testing.TB, w UnitWriter, units []*h264.AccessUnit, fps int) {
	t.Helper()
	stop := time.AfterFunc(300*time.Millisecond, func() { w.Close() })
	defer stop.Stop()
	err := PushUntilError(t, w, units, 0, fps)
	if err == nil || !strings.HasSuffix(err.Error(), ": closed") {
		t.Errorf("writes after Close: err = %v, want one ending in \": closed\"", err)
	}
	w.Close()
}

// BenchWriteUnit writes units to w round and round as fast as it takes
// them, b.N times, with PTS one frame period apart, reporting bytes (the
// mean unit) and allocations per unit.
func BenchWriteUnit(b *testing.B, w UnitWriter, units []*h264.AccessUnit, fps int) {
	size := 0
	for _, au := range units {
		size += len(au.Data)
	}
	b.SetBytes(int64(size / len(units)))
	b.ReportAllocs()
	b.ResetTimer()
	period := time.Second / time.Duration(fps)
	for i := 0; i < b.N; i++ {
		if err := w.WriteUnit(units[i%len(units)], time.Duration(i)*period); err != nil {
			b.Fatal(err)
		}
	}
}
