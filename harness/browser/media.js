// confbench's in-page instrument, injected before any script of the page runs (harness/browser/inject.py).
//
// It makes any web conferencing app carry confbench's media and figures without the app's cooperation:
//   - getUserMedia returns a synthetic camera (a canvas, stamped with the block code of
//     harness/media/stamp.py) and microphone (WebAudio tone pulses on the wall-clock grid);
//   - RTCPeerConnection is wrapped: every connection the app makes is watched; remote video tracks are
//     read frame by frame (requestVideoFrameCallback + canvas readback of the stamp band), remote audio
//     tracks go through a pulse detector (AudioWorklet), and getStats() is collected every second;
//   - the ICE servers are replaced by the scenario's (none by default: no STUN leaves this machine).
// Python drains what was measured with __confbench.collect() (harness/browser/participant.py).
//
// The constants of the block code come from Python (CONFIG.stamp, generated from harness.media.stamp), and
// tests/test_browser_stamp.py checks that this encoder and decoder agree with the Python ones both ways.
(() => {
  "use strict";
  if (window.__confbench) return;
  const C = CONFIG;  // replaced by inject.py with a JSON object
  const S = C.stamp;
  const wall = () => performance.timeOrigin + performance.now();  // UNIX ms, sub-ms resolution
  const out = { frames: [], audio: [], events: [] };
  const MAX_QUEUED = 20000;  // Python drains every second; a stalled drain must not grow without bound
  const push = (list, item) => { if (list.length < MAX_QUEUED) list.push(item); };
  const event = (kind, detail) => push(out.events, { ts: wall() / 1000, kind, detail: String(detail) });

  // ---- the page's own lag ----------------------------------------------------------------------------
  // Received frames are timed when their requestVideoFrameCallback runs on this page's main thread, so a
  // main thread that runs late (a starved browser) adds its lateness to every latency it measures. A timer
  // every LAG_TICK_MS says how late the thread runs: the worst lateness since the last collect() is
  // reported, as a media host reports its event loop's (harness/host/media_host.py).
  const LAG_TICK_MS = 50;
  let lagMax = 0;
  (function lagTick(due) {
    const now = performance.now();
    lagMax = Math.max(lagMax, now - due);
    setTimeout(() => lagTick(now + LAG_TICK_MS), LAG_TICK_MS);
  })(performance.now());

  // ---- the block code (port of harness/media/stamp.py) -------------------------------------------------
  const CRC_TABLE = (() => {
    const t = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320 ^ (c >>> 1) : c >>> 1;
      t[n] = c >>> 0;
    }
    return t;
  })();
  function crc32(bytes, len) {
    let c = 0xFFFFFFFF;
    for (let i = 0; i < len; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xFF] ^ (c >>> 8);
    return (c ^ 0xFFFFFFFF) >>> 0;
  }
  // Python's round() rounds halves to even; the cell edges must fall on the same pixels as there.
  function roundHalfEven(x) {
    const f = Math.floor(x), d = x - f;
    if (d > 0.5) return f + 1;
    if (d < 0.5) return f;
    return f % 2 === 0 ? f : f + 1;
  }
  const cellEdge = (cells, width) => roundHalfEven(cells * width / S.columns);
  const CAPTURE_MOD = 2 ** 48;

  function stampBytes(streamId, frameNo, captureUs) {
    const b = new Uint8Array(16);
    b[0] = (streamId >>> 8) & 0xFF; b[1] = streamId & 0xFF;
    b[2] = (frameNo >>> 24) & 0xFF; b[3] = (frameNo >>> 16) & 0xFF; b[4] = (frameNo >>> 8) & 0xFF; b[5] = frameNo & 0xFF;
    let us = captureUs;
    for (let i = 11; i >= 6; i--) { b[i] = us % 256; us = Math.floor(us / 256); }
    const crc = crc32(b, 12);
    b[12] = (crc >>> 24) & 0xFF; b[13] = (crc >>> 16) & 0xFF; b[14] = (crc >>> 8) & 0xFF; b[15] = crc & 0xFF;
    return b;
  }
  function parseBytes(b) {
    const crc = ((b[12] << 24) | (b[13] << 16) | (b[14] << 8) | b[15]) >>> 0;
    if (crc32(b, 12) !== crc) return null;
    let us = 0;
    for (let i = 6; i < 12; i++) us = us * 256 + b[i];
    return { sid: (b[0] << 8) | b[1], no: ((b[2] << 24) | (b[3] << 16) | (b[4] << 8) | b[5]) >>> 0, us };
  }
  // Grey levels that an RGB-to-limited-range-YUV conversion (BT.601, as Chromium's capture does) turns into
  // the code's DARK and LIGHT luma.
  const toGrey = (luma) => Math.round((luma - 16) * 255 / 219);

  /** Draw the stamp of (streamId, frameNo, captured at wall ms) into the top band of a 2D context. */
  function drawStamp(ctx, width, streamId, frameNo, captureMs) {
    const us = Math.round(captureMs * 1000) % CAPTURE_MOD;
    const bytes = stampBytes(streamId, frameNo >>> 0, us);
    const dark = `rgb(${toGrey(S.dark)},${toGrey(S.dark)},${toGrey(S.dark)})`;
    const light = `rgb(${toGrey(S.light)},${toGrey(S.light)},${toGrey(S.light)})`;
    for (let r = 0; r < S.rows; r++) {
      const y0 = cellEdge(r, width), y1 = cellEdge(r + 1, width);
      for (let c = 0; c < S.columns; c++) {
        const bit = r * S.columns + c;
        const on = (bytes[bit >> 3] >> (7 - (bit & 7))) & 1;
        ctx.fillStyle = on ? light : dark;
        const x0 = cellEdge(c, width), x1 = cellEdge(c + 1, width);
        ctx.fillRect(x0, y0, x1 - x0, y1 - y0);
      }
    }
  }

  const pointsCache = new Map();
  function readPoints(width) {
    let p = pointsCache.get(width);
    if (p) return p;
    const cell = width / S.columns;
    const lo = (1 - S.core) / 2, hi = (1 + S.core) / 2;
    const per = Math.max(1, Math.min(S.max_samples, Math.floor(cell * S.core)));
    const offs = [];
    for (let k = 0; k < per; k++) offs.push(lo + (hi - lo) * (k + 0.5) / per);
    const cols = [], rows = [];
    for (let c = 0; c < S.columns; c++) for (const o of offs) cols.push(Math.min(width - 1, Math.floor(c * cell + o * cell)));
    for (let r = 0; r < S.rows; r++) for (const o of offs) rows.push(Math.floor(r * cell + o * cell));
    p = { per, cols, rows };
    pointsCache.set(width, p);
    return p;
  }
  /** Read a stamp from RGBA pixels (width x height, top rows of a frame); null unless the CRC passes. */
  function readStamp(rgba, width, height) {
    if (width < S.columns) return null;
    const { per, cols, rows } = readPoints(width);
    if (height <= rows[rows.length - 1]) return null;
    const count = per * per;
    const sums = new Float64Array(S.rows * S.columns);
    for (let r = 0; r < S.rows; r++) {
      for (let i = 0; i < per; i++) {
        const y = rows[r * per + i], line = y * width * 4;
        for (let c = 0; c < S.columns; c++) {
          let acc = 0;
          for (let j = 0; j < per; j++) {
            const o = line + cols[c * per + j] * 4;
            // RGB back to limited-range luma (BT.601), the inverse of what the encoder's input went through.
            acc += 16 + 0.257 * rgba[o] + 0.504 * rgba[o + 1] + 0.098 * rgba[o + 2];
          }
          sums[r * S.columns + c] += acc;
        }
      }
    }
    const bits = new Uint8Array(128), doubtful = [];
    for (let k = 0; k < 128; k++) {
      bits[k] = sums[k] >= S.threshold * count ? 1 : 0;
      if (Math.abs(sums[k] - S.threshold * count) < S.doubt * count) doubtful.push(k);
    }
    const pack = (bs) => {
      const b = new Uint8Array(16);
      for (let k = 0; k < 128; k++) if (bs[k]) b[k >> 3] |= 1 << (7 - (k & 7));
      return b;
    };
    const plain = parseBytes(pack(bits));
    if (plain) return plain;
    // Soft-decision repair, as harness.media.stamp._correct: flip only doubtful cells, accept a unique fit.
    if (doubtful.length === 0 || doubtful.length > S.max_flips) return null;
    let found = null;
    for (let subset = 1; subset < (1 << doubtful.length); subset++) {
      const trial = bits.slice();
      doubtful.forEach((cell, i) => { if ((subset >> i) & 1) trial[cell] ^= 1; });
      const cand = parseBytes(pack(trial));
      if (cand) { if (found) return null; found = cand; }
    }
    return found;
  }
  const bandHeight = (width) => cellEdge(S.rows, width);
  /** Capture time (UNIX ms) of a 48-bit microsecond count, unwrapped around the wall clock ``refMs``. */
  function captureMs(us, refMs) {
    const ref = Math.round(refMs * 1000), half = CAPTURE_MOD / 2;
    let delta = ((us - (ref % CAPTURE_MOD)) % CAPTURE_MOD + CAPTURE_MOD + half) % CAPTURE_MOD - half;
    return (ref + delta) / 1000;
  }

  // ---- the synthetic camera ------------------------------------------------------------------------------
  // A window panning over a noise texture with a moving chequered disc (the same motion path as
  // harness/media/video.py's Background), so the encoder has real work to do; then the stamp on top.
  function seeded(seed) {
    let s = seed >>> 0 || 1;
    return () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s / 4294967296; };
  }
  class Camera {
    constructor(v) {
      this.w = v.width; this.h = v.height; this.fps = v.fps; this.sid = v.stream_id;
      this.canvas = document.createElement("canvas");
      this.canvas.width = this.w; this.canvas.height = this.h;
      this.ctx = this.canvas.getContext("2d", { alpha: false });
      this.ax = 2 * Math.floor(this.w / 8); this.ay = 2 * Math.floor(this.h / 8);
      this.phase = this.sid * 7919;
      this.texture = this.makeTexture(this.w + 2 * this.ax, this.h + 2 * this.ay);
      this.radius = Math.max(4, 2 * Math.floor(this.h / 16));
      this.stream = this.canvas.captureStream(0);
      this.track = this.stream.getVideoTracks()[0];
      this.produced = 0; this.skipped = 0; this.next = 0; this.t0 = null; this.timer = null;
    }
    makeTexture(tw, th) {
      const t = document.createElement("canvas");
      t.width = tw; t.height = th;
      const g = t.getContext("2d");
      const img = g.createImageData(tw, th), d = img.data, rnd = seeded(0x5eed + this.sid);
      const grid = 12, gw = Math.ceil(tw / grid) + 1, gh = Math.ceil(th / grid) + 1;
      const coarse = new Float32Array(gw * gh).map(() => rnd());
      for (let y = 0; y < th; y++) {
        for (let x = 0; x < tw; x++) {
          const gx = x / grid, gy = y / grid, ix = Math.floor(gx), iy = Math.floor(gy), fx = gx - ix, fy = gy - iy;
          const v = coarse[iy * gw + ix] * (1 - fx) * (1 - fy) + coarse[iy * gw + ix + 1] * fx * (1 - fy)
            + coarse[(iy + 1) * gw + ix] * (1 - fx) * fy + coarse[(iy + 1) * gw + ix + 1] * fx * fy;
          const l = 30 + 160 * (0.8 * v + 0.2 * rnd()), o = 4 * (y * tw + x);
          d[o] = l; d[o + 1] = l * 0.9 + 20; d[o + 2] = l * 0.8 + 30; d[o + 3] = 255;
        }
      }
      g.putImageData(img, 0, 0);
      return t;
    }
    draw(n) {
      const { ctx, w, h } = this, m = n + this.phase;
      const fx = 0.7 * Math.sin(2 * Math.PI * m / 211) + 0.3 * Math.sin(2 * Math.PI * m / 97);
      const fy = 0.7 * Math.sin(2 * Math.PI * m / 263 + 1.0) + 0.3 * Math.sin(2 * Math.PI * m / 61);
      const ox = this.ax + 2 * Math.round(fx * this.ax / 2), oy = this.ay + 2 * Math.round(fy * this.ay / 2);
      ctx.drawImage(this.texture, ox, oy, w, h, 0, 0, w, h);
      const r = this.radius;
      const x0 = w / 2 - r + (w / 2 - r) * Math.sin(2 * Math.PI * m / 150);
      const y0 = h / 2 - r + (h / 2 - r) * Math.sin(2 * Math.PI * m / 190 + 0.5);
      ctx.save(); ctx.beginPath(); ctx.arc(x0 + r, y0 + r, r, 0, 2 * Math.PI); ctx.clip();
      const cell = Math.max(2, Math.floor(r / 4));
      for (let yy = 0; yy < 2 * r; yy += cell) for (let xx = 0; xx < 2 * r; xx += cell) {
        ctx.fillStyle = ((xx / cell + yy / cell) % 2) ? "#e6c832" : "#1e3c8c";
        ctx.fillRect(x0 + xx, y0 + yy, cell, cell);
      }
      ctx.restore();
      drawStamp(ctx, w, this.sid, n, wall());
      this.track.requestFrame();
      this.produced++;
    }
    start() {
      if (this.timer !== null) return;
      const period = 1000 / this.fps;
      this.t0 = performance.now(); const first = this.next;
      const tick = () => {
        let n = this.next;
        const late = performance.now() - (this.t0 + (n - first) * period);
        if (late > period) { const missed = Math.floor(late / period); n += missed; this.skipped += missed; }
        this.draw(n);
        this.next = n + 1;
        const due = this.t0 + (this.next - first) * period - performance.now();
        this.timer = setTimeout(tick, Math.max(0, due));
      };
      tick();
    }
    stop() { if (this.timer !== null) clearTimeout(this.timer); this.timer = null; }
  }

  // ---- audio: the pulse source and the pulse detector ----------------------------------------------------
  const WORKLET = `
    class Detector extends AudioWorkletProcessor {
      constructor(o) { super(); this.th = o.processorOptions.threshold; this.minQuiet = o.processorOptions.minQuiet * sampleRate; this.quiet = 0; }
      process(inputs) {
        const input = inputs[0];
        if (!input || input.length === 0) return true;
        const n = input[0].length, now = Date.now();
        for (let i = 0; i < n; i++) {
          let loud = false;
          for (const ch of input) if (ch[i] >= this.th || ch[i] <= -this.th) { loud = true; break; }
          if (loud) { if (this.quiet >= this.minQuiet) this.port.postMessage({ now, offset: i, rate: sampleRate }); this.quiet = 0; }
          else this.quiet++;
        }
        return true;
      }
    }
    registerProcessor("confbench-pulse", Detector);`;
  let audioCtx = null, audioReady = null, micDest = null, pulseTimer = null;
  function audio() {
    if (audioCtx) return audioReady;
    audioCtx = new AudioContext({ sampleRate: 48000, latencyHint: "interactive" });
    const url = URL.createObjectURL(new Blob([WORKLET], { type: "application/javascript" }));
    audioReady = audioCtx.audioWorklet.addModule(url).then(() => audioCtx.resume()).catch((e) => event("audio_failed", e));
    return audioReady;
  }
  function microphone() {
    audio();
    if (micDest) return micDest.stream;
    const osc = new OscillatorNode(audioCtx, { frequency: C.audio.pulse_hz });
    const gain = new GainNode(audioCtx, { gain: 0 });
    micDest = new MediaStreamAudioDestinationNode(audioCtx, { channelCount: 1 });
    osc.connect(gain).connect(micDest);
    osc.start();
    // Pulses on the wall-clock grid (every pulse_period_s), scheduled ahead on the context's clock.
    const period = C.audio.pulse_period_s * 1000, len = C.audio.pulse_ms / 1000;
    let nextGrid = Math.ceil(wall() / period) * period;
    const schedule = () => {
      const ts = audioCtx.getOutputTimestamp();
      if (ts.performanceTime === undefined || audioCtx.state !== "running") return;
      const horizon = wall() + 1000;
      while (nextGrid < horizon) {
        const at = ts.contextTime + (nextGrid - performance.timeOrigin - ts.performanceTime) / 1000;
        if (at > audioCtx.currentTime) {
          gain.gain.setValueAtTime(C.audio.amplitude, at);
          gain.gain.setValueAtTime(0, at + len);
        }
        nextGrid += period;
      }
    };
    pulseTimer = setInterval(schedule, 200);
    return micDest.stream;
  }

  // ---- receivers: video frames and audio pulses ----------------------------------------------------------
  const pcs = new Map();  // pc id -> record
  let pcSeq = 0;
  // Readers are keyed by connection and track: track ids are only unique within a connection (Janus's demo
  // gives every feed's connection the same ones).
  const trackKey = (rec, trackId) => rec.id + "/" + trackId;
  const videoReaders = new Map();  // trackKey -> reader
  let overlay = null;
  function container() {
    if (overlay && overlay.isConnected) return overlay;
    overlay = document.createElement("div");
    overlay.id = "confbench-receivers";
    // Visible but tiny and out of the way: Chromium only renders (and calls back for) videos on screen.
    overlay.style.cssText = "position:fixed;right:0;bottom:0;z-index:2147483647;pointer-events:none;opacity:0.05;display:flex";
    (document.body || document.documentElement).appendChild(overlay);
    return overlay;
  }
  function readVideo(track, rec, streamId) {
    const key = trackKey(rec, track.id);
    if (videoReaders.has(key)) return;
    const v = document.createElement("video");
    v.muted = true; v.autoplay = true; v.playsInline = true;
    v.style.cssText = "width:32px;height:18px";
    v.srcObject = new MediaStream([track]);
    const canvas = document.createElement("canvas");
    const g = canvas.getContext("2d", { willReadFrequently: true });
    const reader = { track: key, pc: rec.id, msid: streamId, sid: null, frames: 0, video: v };
    videoReaders.set(key, reader);
    const attach = () => container().appendChild(v);
    if (document.body) attach(); else document.addEventListener("DOMContentLoaded", attach);
    const onFrame = (nowMs, md) => {
      // The frame's time is when the page reads it, not md.presentationTime: by the time the callback runs a
      // newer frame may be current, and the pixels drawn below (hence the stamp) are the current frame's.
      const t = wall();
      const w = md.width || v.videoWidth, h = md.height || v.videoHeight;
      let st = null;
      if (w >= S.columns && h > 0) {
        const band = Math.min(h, bandHeight(w));
        if (canvas.width !== w || canvas.height !== band) { canvas.width = w; canvas.height = band; }
        g.drawImage(v, 0, 0, w, band, 0, 0, w, band);
        st = readStamp(g.getImageData(0, 0, w, band).data, w, band);
      }
      reader.frames++;
      if (st) {
        reader.sid = st.sid;
        push(out.frames, { track: key, ts: t / 1000, sid: st.sid, no: st.no, cap: captureMs(st.us, t) / 1000, w, h });
      } else {
        push(out.frames, { track: key, ts: t / 1000, sid: null, w, h });
      }
      if (track.readyState !== "ended") v.requestVideoFrameCallback(onFrame);
    };
    v.requestVideoFrameCallback(onFrame);
    v.play().catch(() => {});
    track.addEventListener("ended", () => { v.remove(); });
  }
  const audioReaders = new Map();
  async function readAudio(track, rec, streamId) {
    const key = trackKey(rec, track.id);
    if (audioReaders.has(key)) return;
    const reader = { track: key, pc: rec.id, msid: streamId, onsets: 0 };
    audioReaders.set(key, reader);
    // Chromium delivers a remote audio track to WebAudio only while a media element plays it.
    const a = document.createElement("audio");
    a.muted = true; a.autoplay = true; a.srcObject = new MediaStream([track]);
    const attach = () => container().appendChild(a);
    if (document.body) attach(); else document.addEventListener("DOMContentLoaded", attach);
    await audio();
    const src = audioCtx.createMediaStreamSource(new MediaStream([track]));
    const det = new AudioWorkletNode(audioCtx, "confbench-pulse", {
      processorOptions: { threshold: C.audio.threshold, minQuiet: C.audio.min_quiet_s },
    });
    const sink = new GainNode(audioCtx, { gain: 0 });  // keeps the detector pulled by the graph, silently
    src.connect(det).connect(sink).connect(audioCtx.destination);
    const period = C.audio.pulse_period_s * 1000;
    det.port.onmessage = (e) => {
      const onset = e.data.now + 1000 * e.data.offset / e.data.rate;
      const grid = Math.floor(onset / period) * period;
      reader.onsets++;
      push(out.audio, { track: key, ts: onset / 1000, latency_ms: onset - grid });
    };
  }

  // ---- the RTCPeerConnection wrapper ---------------------------------------------------------------------
  const Native = window.RTCPeerConnection;
  const ourTracks = new Set();
  function preferCodec(pc) {
    if (!C.video.codec || !RTCRtpSender.getCapabilities) return;
    const caps = RTCRtpSender.getCapabilities("video");
    if (!caps) return;
    const want = ("video/" + C.video.codec).toLowerCase();
    const first = caps.codecs.filter((c) => c.mimeType.toLowerCase() === want);
    if (!first.length) return;
    const rest = caps.codecs.filter((c) => c.mimeType.toLowerCase() !== want);
    for (const t of pc.getTransceivers()) {
      if (t.sender.track && ourTracks.has(t.sender.track.id) && t.sender.track.kind === "video") {
        try { t.setCodecPreferences(first.concat(rest)); } catch (e) { /* the app fixed its own: keep it */ }
      }
    }
  }
  async function limitBitrate(pc) {
    for (const s of pc.getSenders()) {
      if (!s.track || s.track.kind !== "video" || !ourTracks.has(s.track.id)) continue;
      const p = s.getParameters();
      if (!p.encodings || !p.encodings.length) continue;
      let changed = false;
      for (const e of p.encodings) {
        if (e.maxBitrate !== C.video.bitrate_kbps * 1000) { e.maxBitrate = C.video.bitrate_kbps * 1000; changed = true; }
      }
      if (changed) { try { await s.setParameters(p); } catch (e) { event("bitrate_not_set", e); } }
    }
  }
  function Wrapped(config, ...rest) {
    const cfg = Object.assign({}, config || {});
    // No STUN/TURN unless the scenario names one: an app's public STUN servers are never contacted.
    cfg.iceServers = C.ice_servers.map((u) => ({ urls: u }));
    const pc = new Native(cfg, ...rest);
    const rec = { id: "pc" + (++pcSeq), pc, created: wall() / 1000 };
    pcs.set(rec.id, rec);
    pc.addEventListener("track", (e) => {
      const msid = e.streams && e.streams[0] ? e.streams[0].id : null;
      if (e.track.kind === "video") readVideo(e.track, rec, msid);
      else if (e.track.kind === "audio") readAudio(e.track, rec, msid);
    });
    pc.addEventListener("connectionstatechange", () => {
      if (pc.connectionState === "failed") event("connection_failed", rec.id);
    });
    return pc;
  }
  Wrapped.prototype = Native.prototype;
  Object.setPrototypeOf(Wrapped, Native);
  const origOffer = Native.prototype.createOffer;
  Native.prototype.createOffer = function (...args) { preferCodec(this); return origOffer.apply(this, args); };
  const origRemote = Native.prototype.setRemoteDescription;
  Native.prototype.setRemoteDescription = function (...args) {
    const done = origRemote.apply(this, args);
    return done.then((v) => { limitBitrate(this); return v; });
  };
  window.RTCPeerConnection = Wrapped;
  if (window.webkitRTCPeerConnection) window.webkitRTCPeerConnection = Wrapped;

  // ---- getUserMedia: the synthetic camera and microphone -------------------------------------------------
  let camera = null;
  function cameraTrack() {
    if (!camera) camera = new Camera(C.video);
    camera.start();
    const t = camera.track.clone();
    ourTracks.add(t.id);
    return t;
  }
  async function fakeUserMedia(constraints) {
    const c = constraints || {};
    const stream = new MediaStream();
    if (c.audio && C.publish.includes("audio")) {
      await audio();
      const t = microphone().getAudioTracks()[0].clone();
      ourTracks.add(t.id);
      stream.addTrack(t);
    }
    if (c.video && C.publish.includes("video")) stream.addTrack(cameraTrack());
    if (!stream.getTracks().length) {
      throw new DOMException("confbench: this participant publishes nothing", "NotFoundError");
    }
    return stream;
  }
  if (navigator.mediaDevices) {
    navigator.mediaDevices.getUserMedia = fakeUserMedia;
    const origEnum = navigator.mediaDevices.enumerateDevices.bind(navigator.mediaDevices);
    navigator.mediaDevices.enumerateDevices = async () => {
      const real = await origEnum().catch(() => []);
      const fake = [
        { deviceId: "confbench-camera", kind: "videoinput", label: "confbench camera", groupId: "confbench" },
        { deviceId: "confbench-microphone", kind: "audioinput", label: "confbench microphone", groupId: "confbench" },
      ].map((d) => Object.assign(Object.create(MediaDeviceInfo.prototype), d, { toJSON() { return d; } }));
      return fake.concat(real.filter((d) => d.kind === "audiooutput"));
    };
  }

  // ---- what Python reads -----------------------------------------------------------------------------------
  const STAT_TYPES = new Set(["inbound-rtp", "outbound-rtp", "remote-inbound-rtp", "remote-outbound-rtp"]);
  // The addresses the media actually flows between (the transport's selected candidate pair): the run records
  // them, so where a browser's packets went is checked, not assumed (harness.browser.confinement).
  function selectedRoute(report) {
    let pairId = null;
    report.forEach((s) => { if (s.type === "transport" && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId; });
    const pair = pairId ? report.get(pairId) : null;
    if (!pair) return null;
    const local = report.get(pair.localCandidateId) || {};
    const remote = report.get(pair.remoteCandidateId) || {};
    return { local: local.address || local.ip || null, remote: remote.address || remote.ip || null,
             protocol: local.protocol || null };
  }
  async function stats() {
    const rows = [];
    for (const rec of pcs.values()) {
      const pc = rec.pc;
      if (pc.connectionState === "closed") continue;
      let report;
      try { report = await pc.getStats(); } catch (e) { continue; }
      const entries = [];
      report.forEach((s) => { if (STAT_TYPES.has(s.type)) entries.push(s); });
      // The publisher of each received track: the stamp read on its video, shared with the audio of the
      // same MediaStream (or of the same connection, when it carries one video).
      const videoOfPc = [...videoReaders.values()].filter((r) => r.pc === rec.id);
      const sidOf = (key) => {
        const v = videoReaders.get(key);
        if (v) return v.sid;
        const a = audioReaders.get(key);
        if (!a) return null;
        const partner = videoOfPc.find((r) => a.msid && r.msid === a.msid) || (videoOfPc.length === 1 ? videoOfPc[0] : null);
        return partner ? partner.sid : null;
      };
      const inbound = entries.filter((s) => s.type === "inbound-rtp").map((s) => {
        const key = trackKey(rec, s.trackIdentifier);
        return Object.assign({}, s, { track_key: key, sid: sidOf(key), frames: (videoReaders.get(key) || {}).frames });
      });
      const remoteSids = [...new Set(videoOfPc.map((r) => r.sid).filter((x) => x !== null))];
      rows.push({
        pc: rec.id, state: pc.connectionState, ice: pc.iceConnectionState, label: pc.__confbenchRemote || null,
        remote_sids: remoteSids, inbound, others: entries.filter((s) => s.type !== "inbound-rtp"),
        route: selectedRoute(report),
      });
    }
    return rows;
  }
  window.__confbench = {
    config: C,
    /** Everything measured since the last call, and the state of every connection. */
    async collect() {
      const batch = { frames: out.frames.splice(0), audio: out.audio.splice(0), events: out.events.splice(0) };
      batch.stats = await stats();
      batch.source = camera ? { produced: camera.produced, skipped: camera.skipped } : { produced: 0, skipped: 0 };
      batch.now = wall() / 1000;
      batch.lag_ms = lagMax;
      lagMax = 0;
      return batch;
    },
    connections() {
      return [...pcs.values()].map((r) => ({ pc: r.id, ice: r.pc.iceConnectionState, state: r.pc.connectionState }));
    },
    firstFrame() {
      for (const r of videoReaders.values()) if (r.frames > 0) return true;
      return false;
    },
    // The block code, for tests and the floor benchmark.
    drawStamp, readStamp, bandHeight, captureMs, cameraTrack,
  };
})();
