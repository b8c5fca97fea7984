//go:build race

package webrtc

// The race detector slows pion's DTLS and SRTP several times over; time
// budgets that include a handshake are doubled under it.
const raceSlowdown = 2
