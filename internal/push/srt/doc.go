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
// blocks a sender, and gosrt v0.11.0 has no congestion control: it sends
// each datagram as soon as it is written and resends every one NAKed, at
// once. The Writer does its own (uplink.go): until the receiver reports
// a loss nothing is paced; after that a token bucket lets datagrams go
// at an estimated uplink rate, cut to 0.8 of what the receiver
// acknowledges when packets are NAKed or queue up on the way (the
// unacknowledged span grows), then grown again while nothing is lost.
// Resends count against the rate. WriteUnit waits on the bucket, so a
// slow uplink shows as lag to the caller, which skips to a keyframe, and
// what the receiver gets stays decodable. WriteUnit also waits while
// more than half a second (plus a round trip) of video is unacknowledged,
// for a receiver that stops acknowledging. A receiver that closes the
// connection, or goes silent for Options.Timeout, makes WriteUnit fail
// with ErrGone. Close lingers until the receiver has acknowledged (at
// most 2 s) and played out (its latency, at most 5 s) what was sent: it
// drops what it holds when the connection closes.
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
