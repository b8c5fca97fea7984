// Package srt pushes a feed to an SRT receiver: MPEG-TS (mediacommon's
// writer, one H.264 track) over SRT in caller mode (gosrt), the way a
// broadcast contribution encoder does.
//
// # Target URL
//
//	srt://host:port?streamid=NAME&passphrase=SECRET&latency=MS
//
// The options are srt-live-transmit's, which every SRT server documents:
//
//   - streamid: what the server files the stream under (MediaMTX wants
//     publish:PATH, SRS #!::r=live/KEY,m=publish); at most 512 bytes.
//   - passphrase: 10 to 79 characters; turns on AES encryption. pbkeylen
//     (16, 24 or 32) picks the key length, 16 by default.
//   - latency: the SRT latency in milliseconds, 120 by default; raise it
//     for a long or lossy path (4 × the round trip is the usual advice).
//   - mode: caller only, since camfeed dials out.
//
// Any other option is an error that names it. Errors and logs name the
// target as srt://host:port only: never the stream id or passphrase.
//
// # Behaviour
//
// Each access unit becomes one PES packet with PTS = DTS from the caller's
// clock, sent as 1316-byte datagrams (7 TS packets). SRT itself never
// blocks a sender; instead of letting it drop late packets (which breaks
// pictures), WriteUnit waits while more than half a second (plus a round
// trip) of video is unacknowledged, so a slow uplink shows as lag to the
// caller, which skips to a keyframe. That holds for a receiver that
// stops acknowledging; on a drop-tail bottleneck (a router's queue in
// front of a slow uplink) it did not: gosrt sends and resends at once,
// the unacknowledged span stayed under the limit, and pictures broke
// (the push package's TestSRTSlowUplink, skipped until this is fixed). A receiver that closes the connection, or goes
// silent for Options.Timeout, makes WriteUnit fail with ErrGone.
//
// gosrt sends its handshake once and does not repeat it, so a first
// packet lost on the way reads as "no answer" too; the next attempt of
// the caller's backoff is the retry.
//
// Failures read as: "srt://host:port: no answer in 5s" (nothing answered
// the handshake), "srt://host:port: connection rejected by the server
// (wrong passphrase)" (ErrRejected: retry slowly), "srt://host:port: the
// connection ended: the receiver closed it or stopped answering".
package srt
