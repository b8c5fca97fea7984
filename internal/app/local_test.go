package app

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/camfeed/camfeed/internal/config"
	"github.com/camfeed/camfeed/internal/testsupport"
)

// TestLocalOutputs: the unix socket per feed and the FIFO writer serve
// decodable streams to local consumers; the FIFO survives its reader
// leaving and coming back, and never blocks the camera.
func TestLocalOutputs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fifo := filepath.Join(dir, "cam.h264")
	ta := startApp(t, func(c *config.Config) {
		c.UnixDir = filepath.Join(dir, "sock")
		c.FIFO = fifo
	})
	ta.waitFrames(t, "cam", 5)

	conn, err := net.Dial("unix", filepath.Join(dir, "sock", "cam.sock"))
	if err != nil {
		t.Fatal(err)
	}
	var viaUnix recorder
	readUnits(t, conn, 10, &viaUnix)
	conn.Close()
	if units := viaUnix.units(); len(units) < 2 || !units[0].Keyframe {
		t.Fatalf("unix socket: %d units", len(units))
	}
	if errs, _ := testsupport.DecodeAnnexB(t, viaUnix.whole()); errs != "" {
		t.Errorf("unix socket stream: %s", errs)
	}

	for round := range 2 {
		deadline := time.Now().Add(testsupport.Patience)
		for {
			if fi, err := os.Stat(fifo); err == nil && fi.Mode()&os.ModeNamedPipe != 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("fifo not created")
			}
			time.Sleep(20 * time.Millisecond)
		}
		f, err := os.OpenFile(fifo, os.O_RDONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		var viaFIFO recorder
		readUnits(t, f, 10, &viaFIFO)
		f.Close()
		if units := viaFIFO.units(); len(units) < 2 || !units[0].Keyframe {
			t.Fatalf("fifo round %d: %d units", round, len(units))
		}
	}
	// With no reader, the camera goes on.
	before := ta.feeds["cam"].Hub().Stats().Units
	ta.waitFrames(t, "cam", before+15)
}
