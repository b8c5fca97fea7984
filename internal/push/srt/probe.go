package srt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"syscall"
	"time"

	gosrt "github.com/datarhei/gosrt"
	"github.com/datarhei/gosrt/circular"
	"github.com/datarhei/gosrt/packet"
)

// probeResend is how often probe repeats its handshake: one datagram lost
// on a poor link must not read as a receiver that is down.
const probeResend = 500 * time.Millisecond

// probe asks addr whether an SRT listener is there before gosrt dials it:
// it sends the first handshake packet (the "induction", which a listener
// answers without keeping any state) from a socket of its own, and
// waits up to timeout for a handshake back.
//
// It exists because gosrt v0.11.0 leaks on failed dials: its socket
// reader reports its end on an unbuffered channel that the failed Dial's
// Close reads only if the report is already waiting, and Dial returns no
// connection to drain it through (see drainDialer). Against a receiver
// that is down, as a push target may be for days while camfeed retries
// every 30 s, that stranded about one reader in twenty, 40 KB each. With
// the probe, gosrt dials only a listener that just answered.
//
// The error, when nothing answered, wraps ErrNoAnswer; it says when the
// port refused (ICMP port unreachable: the host is up, nothing listens).
func probe(parent context.Context, addr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", addr)
	if err != nil {
		return fmt.Errorf("could not connect: %w", err)
	}
	defer c.Close()
	// The end of ctx ends a Read at once.
	stop := context.AfterFunc(ctx, func() { _ = c.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()

	hs, err := induction(c)
	if err != nil {
		return err
	}
	buf := make([]byte, gosrt.MAX_MSS_SIZE)
	refused := false
	var next time.Time
	for {
		if now := time.Now(); !now.Before(next) {
			if _, err := c.Write(hs); err != nil && !errors.Is(err, syscall.ECONNREFUSED) {
				return fmt.Errorf("could not connect: %w", err)
			}
			next = now.Add(probeResend)
		}
		if ctx.Err() == nil {
			_ = c.SetReadDeadline(next)
		}
		n, err := c.Read(buf)
		switch {
		case ctx.Err() != nil:
			if err := parent.Err(); err != nil {
				return err
			}
			if refused {
				return fmt.Errorf("%w in %v (the port refused: nothing listens there)", ErrNoAnswer, timeout)
			}
			return fmt.Errorf("%w in %v", ErrNoAnswer, timeout)
		case err == nil:
			if isHandshake(c.RemoteAddr(), buf[:n]) {
				return nil
			}
		case errors.Is(err, syscall.ECONNREFUSED):
			// The host is up and nothing listens there, or not yet (a
			// listener starting): ask again at the next resend.
			refused = true
		case isTimeout(err):
			// The next resend.
		default:
			return fmt.Errorf("could not connect: %w", err)
		}
	}
}

// induction is the first packet of SRT's handshake (version 4, as gosrt
// and libsrt send it), from c's local address.
func induction(c net.Conn) ([]byte, error) {
	cfg := gosrt.DefaultConfig()
	p := packet.NewPacket(c.RemoteAddr())
	defer p.Decommission()
	h := p.Header()
	h.IsControlPacket = true
	h.ControlType = packet.CTRLTYPE_HANDSHAKE
	cif := &packet.CIFHandshake{
		IsRequest:                   true,
		Version:                     4,
		ExtensionField:              2,
		InitialPacketSequenceNumber: circular.New(0, packet.MAX_SEQUENCENUMBER),
		MaxTransmissionUnitSize:     cfg.MSS,
		MaxFlowWindowSize:           cfg.FC,
		HandshakeType:               packet.HSTYPE_INDUCTION,
		SRTSocketId:                 rand.Uint32(),
	}
	cif.PeerIP.FromNetAddr(c.LocalAddr())
	p.MarshalCIF(cif)
	var b bytes.Buffer
	if err := p.Marshal(&b); err != nil {
		return nil, fmt.Errorf("srt handshake: %w", err)
	}
	return b.Bytes(), nil
}

// isHandshake reports whether b, from addr, is an SRT handshake packet.
func isHandshake(addr net.Addr, b []byte) bool {
	p, err := packet.NewPacketFromData(addr, b)
	if err != nil {
		return false
	}
	defer p.Decommission()
	h := p.Header()
	return h.IsControlPacket && h.ControlType == packet.CTRLTYPE_HANDSHAKE
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
