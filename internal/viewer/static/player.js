// camfeed's player: WebRTC (WHEP), then MSE over WebSocket, then LL-HLS,
// with automatic fallback, reconnection, a live-edge controller that keeps
// latency from creeping, and latency measurement for the overlay.
//
// Latency: camfeed stamps every access unit with its ingest time (and the
// test pattern or camera may add a capture time) in an SEI NAL unit. For
// MSE and HLS the player reads those SEIs from each fMP4 fragment; for
// WebRTC the RTP timestamp is the ingest time on a 90 kHz clock. Both are
// server clock; the offset to the local clock comes from GET /time.
"use strict";
(function (global) {
  var UUID = "camfeedtimecode1";

  // ---- clock offset (NTP-style) ----
  var clocks = {};
  function Clock(url) {
    this.url = url;
    this.offset = 0; // server ms - local ms
    this.rtt = Infinity;
    this.synced = false;
  }
  Clock.prototype.sync = function () {
    var self = this, n = 0;
    function once() {
      var t0 = performance.timeOrigin + performance.now();
      return fetch(self.url, {cache: "no-store"}).then(function (r) { return r.json(); }).then(function (j) {
        var t1 = performance.timeOrigin + performance.now(), rtt = t1 - t0;
        // The best of a few round trips: the least delayed says the most.
        if (rtt <= self.rtt * 1.5 || !self.synced) {
          if (rtt < self.rtt) self.rtt = rtt;
          self.offset = j.now / 1000 - (t0 + t1) / 2;
          self.synced = true;
        }
        if (++n < 5) return once();
      });
    }
    this.rtt = Infinity;
    return once().catch(function () {});
  };
  // begin starts syncing, once: the player calls it at its first
  // picture, so the round trips to /time do not compete with the start
  // of the stream for the page's connections and main thread.
  Clock.prototype.begin = function () {
    var self = this;
    if (this.begun) return;
    this.begun = true;
    this.sync();
    setInterval(function () { self.sync(); }, 60000);
  };
  function clockFor(url) {
    if (!clocks[url]) clocks[url] = new Clock(url);
    return clocks[url];
  }

  // ---- fMP4 reading: decode times and camfeed time SEIs ----
  function u32(d, o) { return d.getUint32(o); }
  function type(d, o) { return String.fromCharCode(d.getUint8(o + 4), d.getUint8(o + 5), d.getUint8(o + 6), d.getUint8(o + 7)); }
  function boxes(d, start, end, fn) {
    for (var o = start; o + 8 <= end;) {
      var size = u32(d, o);
      if (size === 1) size = u32(d, o + 8) * 4294967296 + u32(d, o + 12);
      if (size < 8 || o + size > end) size = end - o;
      if (fn(type(d, o), o, o + size) === false) return;
      o += size;
    }
  }
  // timescaleOf finds the video track's time scale in an init segment.
  function timescaleOf(buf) {
    var d = new DataView(buf), ts = 90000;
    (function walk(s, e) {
      boxes(d, s, e, function (t, o, end) {
        if (t === "moov" || t === "trak" || t === "mdia") walk(o + 8, end);
        else if (t === "mdhd") ts = u32(d, o + 8 + (d.getUint8(o + 8) === 1 ? 20 : 12));
      });
    })(0, buf.byteLength);
    return ts;
  }
  // seiTimes reads camfeed time SEIs from one sample (AVCC NAL units).
  function seiTimes(u8, start, end, out) {
    for (var o = start; o + 4 <= end;) {
      var len = (u8[o] << 24 >>> 0) + (u8[o + 1] << 16) + (u8[o + 2] << 8) + u8[o + 3];
      o += 4;
      if (len <= 0 || o + len > end) return;
      if ((u8[o] & 0x1f) === 6) sei(u8.subarray(o + 1, o + len), out);
      o += len;
    }
  }
  function sei(nal, out) {
    var rbsp = [], zeros = 0; // drop emulation prevention bytes (7.4.1)
    for (var i = 0; i < nal.length; i++) {
      var c = nal[i];
      if (zeros >= 2 && c === 3) { zeros = 0; continue; }
      rbsp.push(c);
      zeros = c === 0 ? zeros + 1 : 0;
    }
    for (var p = 0; p < rbsp.length - 1;) {
      var ptype = 0, psize = 0;
      while (rbsp[p] === 0xff) ptype += rbsp[p++];
      ptype += rbsp[p++];
      while (rbsp[p] === 0xff) psize += rbsp[p++];
      psize += rbsp[p++];
      if (p + psize > rbsp.length) return;
      if (ptype === 5 && psize >= 25 && String.fromCharCode.apply(null, rbsp.slice(p, p + 16)) === UUID) {
        var us = 0;
        for (var k = 0; k < 8; k++) us = us * 256 + rbsp[p + 17 + k];
        if (rbsp[p + 16] === 1) out.capture = us / 1000;
        else if (rbsp[p + 16] === 2) out.ingest = us / 1000;
      }
      p += psize;
    }
  }
  // fragmentTimes returns [{dts (s), capture (ms), ingest (ms)}] for each
  // sample of a moof+mdat.
  function fragmentTimes(buf, timescale) {
    var d = new DataView(buf), u8 = new Uint8Array(buf), res = [];
    boxes(d, 0, buf.byteLength, function (t, mo, mend) {
      if (t !== "moof") return;
      boxes(d, mo + 8, mend, function (t, to, tend) {
        if (t !== "traf") return;
        var base = 0, defDur = 0, defSize = 0, baseOff = mo, runs = [];
        boxes(d, to + 8, tend, function (t, o) {
          var v = d.getUint8(o + 8), fl = u32(d, o + 8) & 0xffffff, p = o + 12;
          if (t === "tfhd") {
            p += 4;
            if (fl & 1) { baseOff = u32(d, p) * 4294967296 + u32(d, p + 4); p += 8; }
            if (fl & 2) p += 4;
            if (fl & 8) { defDur = u32(d, p); p += 4; }
            if (fl & 0x10) { defSize = u32(d, p); }
          } else if (t === "tfdt") {
            base = v === 1 ? u32(d, p) * 4294967296 + u32(d, p + 4) : u32(d, p);
          } else if (t === "trun") {
            var n = u32(d, p), off = 0; p += 4;
            if (fl & 1) { off = d.getInt32(p); p += 4; }
            if (fl & 4) p += 4;
            var s = [];
            for (var i = 0; i < n; i++) {
              var dur = defDur, size = defSize;
              if (fl & 0x100) { dur = u32(d, p); p += 4; }
              if (fl & 0x200) { size = u32(d, p); p += 4; }
              if (fl & 0x400) p += 4;
              if (fl & 0x800) p += 4;
              s.push([dur, size]);
            }
            runs.push({off: off, s: s});
          }
        });
        var dts = base;
        runs.forEach(function (r) {
          var pos = baseOff + r.off;
          r.s.forEach(function (x) {
            var e = {dts: dts / timescale, capture: null, ingest: null};
            seiTimes(u8, pos, Math.min(pos + x[1], u8.length), e);
            if (e.capture !== null || e.ingest !== null) res.push(e);
            pos += x[1];
            dts += x[0];
          });
        });
      });
    });
    return res;
  }

  // ---- MediaSource plumbing shared by MSE and HLS ----
  var MS = global.ManagedMediaSource || global.MediaSource;
  // SourceBufferQueue attaches a MediaSource to the video at once; its
  // source buffer is added when the MediaSource is open and the stream's
  // type is known (setType), whichever comes last, so opening the media
  // pipeline overlaps connecting to the stream.
  function SourceBufferQueue(player, mime) {
    var self = this;
    this.player = player;
    this.queue = [];
    this.sb = null;
    this.mime = mime || null;
    this.opened = false;
    this.ms = new MS();
    this.url = URL.createObjectURL(this.ms);
    var video = player.video;
    if (global.ManagedMediaSource && this.ms instanceof global.ManagedMediaSource) video.disableRemotePlayback = true;
    video.srcObject = null;
    video.src = this.url;
    this.ms.addEventListener("sourceopen", function () {
      player.mark("sourceOpen");
      self.opened = true;
      self.attach();
    }, {once: true});
  }
  SourceBufferQueue.prototype.setType = function (mime) {
    this.mime = mime;
    this.attach();
  };
  SourceBufferQueue.prototype.attach = function () {
    var self = this, player = this.player;
    if (this.sb || !this.opened || !this.mime || this.closed) return;
    try {
      this.sb = this.ms.addSourceBuffer(this.mime);
      this.sb.mode = "segments";
      this.sb.addEventListener("updateend", function () { self.started || self.kick(); self.pump(); });
      this.sb.addEventListener("error", function () { player.fail("source buffer error"); });
    } catch (e) {
      player.fail("MediaSource cannot play " + this.mime + ": " + e.message);
      return;
    }
    this.pump();
  };
  // kick starts playback at the first buffered picture as soon as there
  // is one, rather than at the next live-edge tick.
  SourceBufferQueue.prototype.kick = function () {
    var v = this.player.video, b = this.sb.buffered;
    if (!b.length) return;
    this.started = true;
    this.player.mark("buffered");
    if (v.currentTime < b.start(0) || v.currentTime > b.end(b.length - 1)) v.currentTime = b.start(b.length - 1);
    v.play().catch(function () {});
  };
  SourceBufferQueue.prototype.append = function (buf) {
    this.queue.push(buf);
    this.pump();
  };
  SourceBufferQueue.prototype.pump = function () {
    var sb = this.sb;
    if (!sb || sb.updating || this.closed) return;
    if (this.trimTo > 0) {
      var to = this.trimTo;
      this.trimTo = 0;
      try { sb.remove(0, to); return; } catch (e) { /* retry later */ }
    }
    if (!this.queue.length) return;
    var q = this.queue, buf;
    if (q.length === 1) buf = q[0];
    else {
      // Coalesce a backlog into one append: one updateend round trip
      // per burst instead of per fragment.
      var n = 0, i;
      for (i = 0; i < q.length; i++) n += q[i].byteLength;
      var u = new Uint8Array(n);
      for (n = 0, i = 0; i < q.length; i++) { u.set(new Uint8Array(q[i]), n); n += q[i].byteLength; }
      buf = u.buffer;
    }
    this.queue = [];
    try {
      sb.appendBuffer(buf);
    } catch (e) {
      if (e.name === "QuotaExceededError") {
        this.trimTo = this.player.video.currentTime - 1;
        this.queue.unshift(buf);
      } else {
        this.player.fail("append: " + e.message);
      }
    }
  };
  // trim drops what lies more than keep seconds behind the play position,
  // so a page left open for days holds a few seconds of video, not hours.
  SourceBufferQueue.prototype.trim = function (keep) {
    var sb = this.sb, v = this.player.video;
    if (!sb || !sb.buffered.length) return;
    if (v.currentTime - sb.buffered.start(0) > 2 * keep) {
      this.trimTo = v.currentTime - keep;
      this.pump();
    }
  };
  SourceBufferQueue.prototype.close = function () {
    this.closed = true;
    var v = this.player.video;
    if (v.src === this.url) {
      v.removeAttribute("src");
      v.load();
    }
    URL.revokeObjectURL(this.url);
  };

  // liveEdge keeps the play position near the newest buffered frame:
  // play a little faster when behind the target, seek when behind by more
  // than jump, and step over gaps (skipped frames).
  function liveEdge(video, target, jump) {
    var b = video.buffered;
    if (!b.length) return;
    var start = b.start(b.length - 1), end = b.end(b.length - 1), t = video.currentTime;
    if (t < start - 0.01 || t > end + 1) {
      video.currentTime = Math.max(start, end - target);
    } else {
      // A proportional nudge: 2% faster per 20 ms behind the target, up
      // to 25%, so the position settles within a frame of the target
      // instead of anywhere inside a band.
      var over = end - t - target;
      if (over > jump - target) video.currentTime = end - target;
      else video.playbackRate = over > 0.02 ? Math.min(1 + over, 1.25) : 1;
    }
    if (video.paused) video.play().catch(function () {});
  }

  // reading turns one latency measurement into what the overlay may
  // average, or null. The measurement is the local display time of a
  // frame, moved to the server's clock by the offset from GET /time,
  // less the frame's time stamp on the server's clock (its ingest or
  // capture time). The offset is good to half the round trip of the
  // best /time exchange (NTP's bound), and the two ends of the
  // measurement are read to about a millisecond: a reading below zero by
  // less than that is a latency too small to tell from zero, and shows
  // as 0; one further below says the offset is off (the network or the
  // server's clock moved), and is left out until the next sync.
  function reading(lat, rtt) {
    if (lat >= 0) return lat;
    var err = (isFinite(rtt) ? rtt / 2 : 0) + 2;
    return lat >= -err ? 0 : null;
  }

  function abs(base, rel) { return new URL(rel, new URL(base, location.href)).href; }

  // ---- MSE over WebSocket ----
  function MSESession(player) { this.player = player; }
  MSESession.prototype.start = function () {
    var p = this.player, self = this;
    var u = new URL(abs(p.base, "ws"));
    u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
    var ws = this.ws = new WebSocket(u.href);
    ws.binaryType = "arraybuffer";
    var q = self.q = new SourceBufferQueue(p), inited = false;
    ws.onopen = function () { p.mark("wsOpen"); };
    ws.onmessage = function (e) {
      if (typeof e.data === "string") {
        p.mark("streamInfo");
        var info = JSON.parse(e.data);
        p.setInfo(info);
        q.setType('video/mp4; codecs="' + info.codec + '"');
        return;
      }
      p.bytes += e.data.byteLength;
      if (!inited) { inited = true; p.mark("initSegment"); self.timescale = timescaleOf(e.data); } else { p.mark("firstFragment"); p.addTimes(fragmentTimes(e.data, self.timescale)); }
      q.append(e.data);
    };
    ws.onclose = function (e) { if (!self.stopped) p.fail("websocket closed (" + e.code + ")"); };
    return Promise.resolve();
  };
  MSESession.prototype.tick = function () {
    if (!this.q) return;
    liveEdge(this.player.video, this.player.thumbnail ? 0.3 : 0.1, 1.0);
    this.q.trim(10);
  };
  MSESession.prototype.stop = function () {
    this.stopped = true;
    if (this.ws) this.ws.close();
    if (this.q) this.q.close();
  };

  // ---- WebRTC (WHEP) ----
  function WebRTCSession(player) { this.player = player; }
  WebRTCSession.prototype.start = function () {
    var p = this.player, self = this;
    if (!global.RTCPeerConnection) return Promise.reject(new Error("no WebRTC in this browser"));
    var pc = this.pc = new RTCPeerConnection({bundlePolicy: "max-bundle"});
    p.mark("pcMade");
    var tr = pc.addTransceiver("video", {direction: "recvonly"});
    p.mark("transceiver");
    if (tr.setCodecPreferences && global.RTCRtpReceiver && RTCRtpReceiver.getCapabilities) {
      var h264 = RTCRtpReceiver.getCapabilities("video").codecs.filter(function (c) {
        return c.mimeType === "video/H264" && /packetization-mode=1/.test(c.sdpFmtpLine || "");
      });
      p.mark("caps");
      if (h264.length) try { tr.setCodecPreferences(h264); } catch (e) { /* keep defaults */ }
    }
    // show puts the receiver's track on the video. It is done at once,
    // not at ontrack: a video element takes its time to set up its
    // player (tens of ms of the page's main thread, here spent while the
    // browser makes the offer on its own thread), and a picture decoded
    // before the track has its sink is shown to no one.
    // With the feed's join policy at "instant" the first picture can be
    // a lone keyframe (when the cached one is stale, the frames after it
    // are not sent), so losing it meant waiting for the next keyframe,
    // up to a GOP later: 200–700 ms of the first picture in 1 start of 2.
    function show(track, receiver) {
      try { receiver.jitterBufferTarget = 0; } catch (x) { /* older browsers */ }
      try { receiver.playoutDelayHint = 0; } catch (x) { /* non-Chrome */ }
      var v = p.video, cur = v.srcObject;
      if (cur && cur.getVideoTracks && cur.getVideoTracks()[0] === track) return;
      if (v.src) { v.removeAttribute("src"); }
      v.srcObject = new MediaStream([track]);
      v.play().catch(function () {});
    }
    pc.ontrack = function (e) {
      p.mark("track");
      show(e.track, e.receiver);
    };
    if (tr.receiver && tr.receiver.track) show(tr.receiver.track, tr.receiver);
    pc.oniceconnectionstatechange = function () {
      if (pc.iceConnectionState === "connected" || pc.iceConnectionState === "completed") p.mark("iceConnected");
    };
    pc.onconnectionstatechange = function () {
      var s = pc.connectionState;
      if (s === "connected") p.mark("connected");
      if (s === "failed" || s === "closed") { if (!self.stopped) p.fail("WebRTC " + s); }
      else if (s === "disconnected") {
        clearTimeout(self.discTimer);
        self.discTimer = setTimeout(function () { if (pc.connectionState === "disconnected" && !self.stopped) p.fail("WebRTC disconnected"); }, 3000);
      }
    };
    var url = abs(p.base, "whep");
    // The offer goes out before candidates are gathered: the server
    // learns this side's address from its connectivity checks, which
    // saves the gathering time on every start. It also goes out while
    // the browser applies it (setLocalDescription, 20–50 ms in Chromium):
    // the offer is final once made, and the answer is applied only after
    // both are done.
    return pc.createOffer().then(function (o) {
      p.mark("offerMade");
      var local = pc.setLocalDescription(o);
      p.mark("offerSent");
      var answer = fetch(url, {method: "POST", headers: {"Content-Type": "application/sdp"}, body: o.sdp});
      return Promise.all([answer, local]).then(function (r) { return r[0]; });
    }).then(function (r) {
      if (r.status !== 201 && r.status !== 200) return r.text().then(function (t) { throw new Error("WHEP " + r.status + " " + t.trim()); });
      var loc = r.headers.get("Location");
      if (loc) self.resource = new URL(loc, url).href;
      return r.text();
    }).then(function (sdp) {
      p.mark("answered");
      if (self.stopped) return;
      return pc.setRemoteDescription({type: "answer", sdp: sdp});
    }).then(function () { p.mark("remoteSet"); });
  };
  WebRTCSession.prototype.tick = function () {
    var p = this.player, self = this, now = performance.now();
    if (!this.pc || now - (this.lastStats || 0) < 1000) return;
    this.lastStats = now;
    this.pc.getStats().then(function (r) {
      r.forEach(function (s) {
        if (s.type === "inbound-rtp" && s.kind === "video") {
          if (self.lastBytes !== undefined) p.bytes += s.bytesReceived - self.lastBytes;
          self.lastBytes = s.bytesReceived;
          p.webrtcStats = s;
        }
      });
    }).catch(function () {});
  };
  WebRTCSession.prototype.stop = function () {
    this.stopped = true;
    clearTimeout(this.discTimer);
    if (this.resource) fetch(this.resource, {method: "DELETE", keepalive: true}).catch(function () {});
    if (this.pc) this.pc.close();
    var v = this.player.video;
    if (v.srcObject) v.srcObject = null;
  };

  // ---- LL-HLS: native where MediaSource is missing (iOS), else a small
  // client that fetches fMP4 parts with blocking playlist reloads ----
  function parsePlaylist(text, url) {
    var pl = {parts: [], segs: {}, msn: 0, map: null, variant: null, codecs: null};
    var msn = null, idx = 0, lines = text.split("\n");
    for (var i = 0; i < lines.length; i++) {
      var l = lines[i].trim(), m;
      if (!l) continue;
      if ((m = /^#EXT-X-MEDIA-SEQUENCE:(\d+)/.exec(l))) { msn = pl.msn = +m[1]; }
      else if ((m = /^#EXT-X-MAP:.*URI="([^"]+)"/.exec(l))) pl.map = abs(url, m[1]);
      else if ((m = /^#EXT-X-STREAM-INF:(.*)/.exec(l))) { var c = /CODECS="([^"]+)"/.exec(m[1]); pl.codecs = c && c[1]; pl.expectVariant = true; }
      else if ((m = /^#EXT-X-PART:(.*)/.exec(l))) {
        var u = /URI="([^"]+)"/.exec(m[1]);
        pl.parts.push({msn: msn, idx: idx++, uri: abs(url, u[1]), independent: /INDEPENDENT=YES/.test(m[1])});
      } else if (l[0] !== "#") {
        if (pl.expectVariant) { pl.variant = abs(url, l); pl.expectVariant = false; continue; }
        pl.segs[msn] = idx;
        msn++;
        idx = 0;
      }
    }
    pl.next = msn; // the segment being made
    return pl;
  }
  function HLSSession(player) { this.player = player; }
  HLSSession.prototype.start = function () {
    var p = this.player, self = this, url = abs(p.base, "index.m3u8");
    if (!MS && p.video.canPlayType("application/vnd.apple.mpegurl")) {
      this.native = true;
      p.video.srcObject = null;
      p.video.src = url;
      p.video.play().catch(function () {});
      return Promise.resolve();
    }
    if (!MS) return Promise.reject(new Error("no MediaSource and no native HLS"));
    function get(u, bin) {
      return fetch(u, {cache: "no-store"}).then(function (r) {
        if (!r.ok) throw new Error("HLS " + r.status + " for " + u);
        return bin ? r.arrayBuffer() : r.text();
      });
    }
    var mediaURL, q;
    return get(url).then(function (t) {
      var mv = parsePlaylist(t, url);
      mediaURL = mv.variant || url;
      self.codecs = (mv.codecs || "avc1.42e01f").split(",")[0];
      return mv.variant ? get(mediaURL) : t;
    }).then(function (t) {
      var pl = parsePlaylist(t, mediaURL);
      q = self.q = new SourceBufferQueue(p, 'video/mp4; codecs="' + self.codecs + '"');
      return get(pl.map, true).then(function (init) {
        self.timescale = timescaleOf(init);
        q.append(init);
        self.loop(pl, mediaURL, get);
      });
    });
  };
  HLSSession.prototype.loop = function (pl, mediaURL, get) {
    var self = this, p = this.player, cur = null;
    function newest(pl) {
      for (var i = pl.parts.length - 1; i >= 0; i--) if (pl.parts[i].independent) return {msn: pl.parts[i].msn, idx: pl.parts[i].idx};
      return null;
    }
    function step(pl) {
      if (self.stopped) return;
      if (!cur) cur = newest(pl);
      if (!cur || cur.msn < pl.msn) cur = newest(pl);
      if (!cur) return reload(pl.next, 0);
      if (pl.segs[cur.msn] !== undefined && cur.idx >= pl.segs[cur.msn]) { cur = {msn: cur.msn + 1, idx: 0}; return step(pl); }
      var part = null;
      for (var i = 0; i < pl.parts.length; i++) if (pl.parts[i].msn === cur.msn && pl.parts[i].idx === cur.idx) { part = pl.parts[i]; break; }
      if (!part) return reload(cur.msn, cur.idx);
      get(part.uri, true).then(function (b) {
        if (self.stopped) return;
        p.bytes += b.byteLength;
        p.addTimes(fragmentTimes(b, self.timescale));
        self.q.append(b);
        cur = {msn: cur.msn, idx: cur.idx + 1};
        step(pl);
      }).catch(function (e) { p.fail(e.message); });
    }
    function reload(msn, idx) {
      get(mediaURL + (mediaURL.indexOf("?") < 0 ? "?" : "&") + "_HLS_msn=" + msn + "&_HLS_part=" + idx).then(function (t) {
        step(parsePlaylist(t, mediaURL));
      }).catch(function (e) { if (!self.stopped) p.fail(e.message); });
    }
    step(pl);
  };
  HLSSession.prototype.tick = function () {
    if (this.native) {
      if (this.player.video.paused) this.player.video.play().catch(function () {});
      return;
    }
    if (!this.q) return;
    liveEdge(this.player.video, 0.3, 3.0);
    this.q.trim(10);
  };
  HLSSession.prototype.stop = function () {
    this.stopped = true;
    if (this.q) this.q.close();
    if (this.native) { this.player.video.removeAttribute("src"); this.player.video.load(); }
  };

  var sessions = {webrtc: WebRTCSession, mse: MSESession, hls: HLSSession};
  var names = {webrtc: "WebRTC", mse: "MSE", hls: "LL-HLS"};

  // ---- the player ----
  function CamfeedPlayer(video, opts) {
    opts = opts || {};
    this.video = video;
    this.base = opts.base || "./";
    this.protocols = (opts.protocols || ["webrtc", "mse", "hls"]).filter(function (p) { return sessions[p]; });
    this.choice = opts.protocol || "auto";
    this.thumbnail = !!opts.thumbnail;
    this.measure = !!opts.measure; // read the test pattern's pixel time code
    this.onstats = opts.onstats || function () {};
    this.onstatus = opts.onstatus || function () {};
    this.clock = clockFor(abs(this.base, "../time"));
    this.stats = {protocol: "", width: 0, height: 0, fps: null, bitrate: null, latency: null, latencyKind: "", frames: 0, state: "idle"};
    this.tcSamples = [];
    this.times = [];
    this.bytes = 0;
    this.frames = 0;
    this.failures = 0;
    // marks are the start-up milestones of the first session, in ms
    // since navigation start (performance.now()): what the first-picture
    // measurement (internal/browsertest) breaks the time down by.
    this.marks = {};
    this.info = null;
    var self = this;
    video.muted = true;
    video.playsInline = true;
    ["loadedmetadata", "loadeddata", "playing"].forEach(function (e) {
      video.addEventListener(e, function () { self.mark(e); });
    });
    if ("requestVideoFrameCallback" in HTMLVideoElement.prototype) {
      var cb = function (now, meta) { self.onFrame(meta); video.requestVideoFrameCallback(cb); };
      video.requestVideoFrameCallback(cb);
    } else {
      video.addEventListener("timeupdate", function () { self.onFrame(null); });
    }
  }
  CamfeedPlayer.prototype.mark = function (name) {
    if (!(name in this.marks)) this.marks[name] = performance.now();
  };
  CamfeedPlayer.prototype.start = function () {
    var self = this;
    this.mark("start");
    if (!this.timer) this.timer = setInterval(function () { self.tick(); }, 200);
    this.idx = 0;
    this.connect();
  };
  CamfeedPlayer.prototype.fetchInfo = function () {
    var self = this;
    fetch(abs(this.base, "info"), {cache: "no-store"}).then(function (r) { return r.ok ? r.json() : null; }).then(function (j) { if (j) self.info = j; }).catch(function () {});
  };
  CamfeedPlayer.prototype.order = function () {
    return this.choice === "auto" ? this.protocols : [this.choice];
  };
  // use switches protocol: "auto", "webrtc", "mse" or "hls".
  CamfeedPlayer.prototype.use = function (proto) {
    this.choice = proto;
    this.idx = 0;
    this.failures = 0;
    this.connect();
  };
  CamfeedPlayer.prototype.connect = function () {
    var self = this;
    clearTimeout(this.retryTimer);
    if (this.session) { this.session.stop(); this.session = null; }
    var order = this.order(), proto = order[this.idx % order.length];
    this.proto = proto;
    this.times = [];
    this.lastFrameAt = 0;
    this.startedAt = performance.now();
    this.gotFrame = false;
    this.stats.protocol = names[proto];
    // Rates and latency are the new session's: none until it has shown
    // a window of frames (see tick) or a reading (see onFrame).
    this.stats.fps = this.stats.bitrate = this.stats.latency = null;
    this.windowAt = 0;
    this.setState("connecting");
    var s = this.session = new sessions[proto](this);
    this.mark("session");
    var started = s.start();
    this.mark("sessionStarted");
    started.catch(function (e) { if (self.session === s) self.fail(e.message || String(e)); });
  };
  CamfeedPlayer.prototype.setState = function (st, why) {
    this.stats.state = st;
    this.onstatus(st, why || "", this.stats.protocol);
  };
  CamfeedPlayer.prototype.fail = function (why) {
    var self = this;
    if (!this.session) return;
    if (global.console) console.warn("camfeed " + this.proto + ": " + why);
    this.session.stop();
    this.session = null;
    this.failures++;
    // A protocol that never showed a picture is given up for the next
    // one; one that played is retried, and given up after three misses.
    if (!this.everPlayed || this.failures >= 3) { this.idx++; this.everPlayed = false; this.failures = this.failures >= 3 ? 0 : this.failures; }
    var delay = Math.min(500 * Math.pow(2, Math.max(0, this.failures - 1)), 8000);
    this.setState("reconnecting", why);
    this.retryTimer = setTimeout(function () { self.connect(); }, delay);
  };
  CamfeedPlayer.prototype.stop = function () {
    clearTimeout(this.retryTimer);
    clearInterval(this.timer);
    clearInterval(this.infoTimer);
    this.timer = this.infoTimer = null;
    if (this.session) this.session.stop();
    this.session = null;
    this.setState("stopped");
  };
  CamfeedPlayer.prototype.setInfo = function (info) { this.streamInfo = info; };
  CamfeedPlayer.prototype.addTimes = function (list) {
    for (var i = 0; i < list.length; i++) this.times.push(list[i]);
    if (this.times.length > 600) this.times.splice(0, this.times.length - 600);
  };
  // timesAt finds the SEI times of the frame at media time t.
  CamfeedPlayer.prototype.timesAt = function (t) {
    var a = this.times;
    for (var i = a.length - 1; i >= 0; i--) if (a[i].dts <= t + 0.002) return a[i];
    return null;
  };
  CamfeedPlayer.prototype.onFrame = function (meta) {
    var v = this.video, now = performance.timeOrigin + (meta && meta.expectedDisplayTime ? meta.expectedDisplayTime : performance.now());
    if (!this.session) return;
    this.frames++;
    this.lastFrameAt = performance.now();
    if (!this.gotFrame) {
      this.mark("firstFrame");
      if (meta && meta.presentationTime) this.marks.presented = meta.presentationTime;
      if (meta && meta.rtpTimestamp !== undefined) this.marks.rtpTimestamp = meta.rtpTimestamp;
      this.gotFrame = true;
      this.firstFrameMs = this.lastFrameAt - this.startedAt;
      this.everPlayed = true;
      this.failures = 0;
      // The first window of the rates starts here, not at connect.
      this.windowAt = this.lastFrameAt;
      this.frames = this.bytes = 0;
      this.setState("playing");
      // What only the overlay needs waits for the picture.
      this.clock.begin();
      if (!this.thumbnail && !this.infoTimer) {
        var self = this;
        this.fetchInfo();
        this.infoTimer = setInterval(function () { self.fetchInfo(); }, 5000);
      }
    }
    var server = now + this.clock.offset, t = null;
    if (this.proto === "webrtc" && meta && meta.rtpTimestamp !== undefined) {
      // The RTP clock is the ingest time (µs * 9 / 100, mod 2^32): unwrap
      // it around the server's present.
      var period = 4294967296 / 90, ms = meta.rtpTimestamp / 90;
      var ingest = ms + Math.round((server - ms) / period) * period;
      t = {ingest: ingest, capture: null};
      if (this.info && this.info.captureDelay != null) t.capture = ingest - this.info.captureDelay / 1000;
    } else if (this.proto === "hls" && this.session.native && v.getStartDate) {
      var sd = v.getStartDate().getTime();
      if (!isNaN(sd)) t = {ingest: sd + v.currentTime * 1000, capture: null};
    } else {
      t = this.timesAt(meta ? meta.mediaTime : v.currentTime);
    }
    if (t && (t.capture !== null || t.ingest !== null) && this.clock.synced) {
      var cam = t.capture !== null, kind = cam ? "camera→screen" : "server→screen";
      var lat = reading(server - (cam ? t.capture : t.ingest), this.clock.rtt);
      if (kind !== this.stats.latencyKind) this.stats.latency = null; // do not average two kinds
      if (lat !== null) {
        this.stats.latency = this.stats.latency === null ? lat : this.stats.latency * 0.8 + lat * 0.2;
        this.stats.latencyKind = kind;
      }
    }
    if (this.measure && global.camfeedTimeCode && this.clock.synced) {
      var tc = camfeedTimeCode.fromVideo(v);
      if (tc !== null) {
        this.tcSamples.push({at: now, latency: server - tc, proto: this.proto});
        if (this.tcSamples.length > 20000) this.tcSamples.splice(0, 10000);
      }
    }
  };
  CamfeedPlayer.prototype.tick = function () {
    var s = this.session, now = performance.now();
    if (!s) return;
    s.tick && s.tick();
    // Once a second: fps and bitrate for the overlay, over the frames
    // shown since the last time. The first window starts at the first
    // picture, so the overlay never shows a rate of the time spent
    // connecting ("0 fps").
    if (this.windowAt && now - this.windowAt >= 1000) {
      var dt = (now - this.windowAt) / 1000;
      this.stats.fps = this.frames / dt;
      this.stats.bitrate = this.bytes * 8 / dt;
      this.stats.frames += this.frames;
      this.frames = 0;
      this.bytes = 0;
      this.windowAt = now;
      this.stats.width = this.video.videoWidth;
      this.stats.height = this.video.videoHeight;
      this.onstats(this.stats);
    }
    // No picture, or no new frame, for too long: reconnect. Hidden pages
    // do not render frames, so they are left alone.
    if (document.visibilityState !== "visible") return;
    if (!this.gotFrame && now - this.startedAt > 8000) this.fail("no picture after 8 s");
    else if (this.gotFrame && now - this.lastFrameAt > 5000) this.fail("no new frame for 5 s");
  };

  CamfeedPlayer.fragmentTimes = fragmentTimes;
  CamfeedPlayer.reading = reading;
  CamfeedPlayer.names = names;
  global.CamfeedPlayer = CamfeedPlayer;
})(window);
