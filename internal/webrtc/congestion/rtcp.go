package congestion

import (
	"time"

	"github.com/pion/rtcp"
)

// Seqs lists the sequence numbers a generic NACK asks for.
func Seqs(nack *rtcp.TransportLayerNack) []uint16 {
	var seqs []uint16
	for _, pair := range nack.Nacks {
		pair.Range(func(seq uint16) bool {
			seqs = append(seqs, seq)
			return true
		})
	}
	return seqs
}

// Report records the block of rr about ssrc, if it has one.
func (c *Link) Report(rr *rtcp.ReceiverReport, ssrc uint32, now time.Time) {
	for _, r := range rr.Reports {
		if r.SSRC == ssrc {
			c.ReceiverReport(r.FractionLost, r.TotalLost, r.LastSequenceNumber, now)
		}
	}
}
