package rtsp

import (
	"sync"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"

	"github.com/camfeed/camfeed/internal/source"
)

// publisher is one RTSP publisher (ANNOUNCE/RECORD) feeding a feed: its
// RTP packets become access units through source.RTPH264, which passes on
// whole pictures only. So a publisher that hangs up mid-picture leaves
// nothing half-written behind, and the next publisher starts cleanly at
// its first keyframe.
type publisher struct {
	media  *description.Media
	forma  *format.H264
	depack *source.RTPH264

	once      sync.Once
	release   func()
	stopWatch func() // ends the no-video watch (see OnAnnounce); may be nil
}

func newPublisher(sink source.Sink, release func(), media *description.Media, forma *format.H264) (*publisher, error) {
	d, err := source.NewRTPH264(forma, sink)
	if err != nil {
		return nil, err
	}
	return &publisher{media: media, forma: forma, depack: d, release: release}, nil
}

func (p *publisher) units() uint64 {
	n, _ := p.depack.Stats()
	return n
}

func (p *publisher) bytes() uint64 {
	_, b := p.depack.Stats()
	return b
}

// close releases the feed; the sink gets nothing more.
func (p *publisher) close() {
	p.once.Do(func() {
		if p.stopWatch != nil {
			p.stopWatch()
		}
		p.depack.Stop()
		p.release()
	})
}
