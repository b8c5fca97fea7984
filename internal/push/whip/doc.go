// Package whip pushes a feed to a WHIP endpoint (RFC 9725): Cloudflare
// Stream, MediaMTX, SRS, Janus, OBS-compatible ingest servers. camfeed
// offers one send-only H.264 track (its own profile,
// packetization-mode=1) with pion, POSTs the offer with every ICE
// candidate in it (no trickle, which most servers lack), applies the
// answer, and sends RTP once ICE and DTLS are up.
//
// # Target URL
//
//	whip+https://host/path?token=SECRET
//	whip+http://host:port/path
//
// "whip+" is taken off to give the endpoint. The bearer token comes from
// the config's token setting or, failing that, from ?token= (which is
// taken off the endpoint too); other options stay on the endpoint URL.
// Errors name the target as whip+scheme://host/path, with any
// path segment of 20 characters or more (a stream key, as in Cloudflare's
// URLs) cut to its first four: never the token or the query.
//
// # Behaviour
//
// RTP timestamps come from the caller's presentation times on the 90 kHz
// clock (from a random base, RFC 3550 §5.1). NACKs are answered from
// pion's send buffer; PLIs and FIRs are read and ignored, since a push
// cannot make the camera send a keyframe sooner (the next comes within a
// GOP). Close DELETEs the session URL the server gave in Location.
//
// Failures read as: "whip+https://host/path: the server refused the token
// (HTTP 401)" (ErrRefused: retry slowly), "…: no connection in 5s: no
// media path (ICE or DTLS) to the server; is UDP blocked?"
// (ErrNoConnection), "…: the connection ended: the server stopped
// answering" (ErrGone, from WriteUnit once ICE gives up, within about
// Options.Timeout).
//
// WebRTC gives a sender no backpressure: pion never blocks, and on an
// uplink slower than the stream packets would be lost and pictures
// break. The Writer judges the uplink from the server's NACKs and
// receiver reports with the WHEP output's logic (package
// internal/webrtc/congestion): when more than a tenth of what it sent in
// a second is reported lost, it sends keyframes only (and the picture
// after each), each paced at the rate the uplink was seen to deliver, and
// WriteUnit returns pushnet.ErrSkip for each unit it leaves out, which the
// push counts as skipped on its way to the next keyframe. After a quiet
// spell (15 s, doubling on each failed try) it tries the full stream
// again. NACKs are answered from the Writer's own history of 512 packets,
// while under 250 ms old and within a fifth of what was sent in the last
// second (keyframe packets only in keyframe mode): pion's responder
// resends all that is asked, and on a short uplink the resends crowded out
// the stream until nothing got through. The first second of an overload,
// before the loss is reported, is sent whole and can break pictures until
// the next keyframe.
//
// Behind NAT, camfeed offers host candidates only (no STUN server is
// configured); this works with servers that have a public address, which
// learn camfeed's from its connectivity checks, as WHIP servers expect.
package whip
