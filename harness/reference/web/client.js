// The reference SFU's minimal web client: publish with WHIP, subscribe to every other publisher with WHEP.
// A person (or confbench's browser participant) types a name and presses Join. The server answers with
// every candidate and supports no trickle ICE, so each offer is sent once ICE gathering is complete.
"use strict";
const params = new URLSearchParams(location.search);
const room = params.get("room") || "confbench";
const POLL_MS = 1000, GATHER_MS = 5000;
const $ = (id) => document.getElementById(id);
$("room").textContent = room;
let me = null, local = null, publication = null;
const subscriptions = new Map();  // publisher -> {pc, resource, tile}
let poller = null, leaving = false;

function setState(state, text) { $("state").dataset.state = state; $("state").textContent = text; }

function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { if (pc.iceGatheringState === "complete") { pc.removeEventListener("icegatheringstatechange", done); resolve(); } };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, GATHER_MS);
  });
}

async function negotiate(pc, url) {
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  const answer = await fetch(url, { method: "POST", headers: { "Content-Type": "application/sdp" }, body: pc.localDescription.sdp });
  const text = await answer.text();
  if (answer.status !== 201) throw new Error(`${url}: HTTP ${answer.status}: ${text.trim()}`);
  await pc.setRemoteDescription({ type: "answer", sdp: text });
  return new URL(answer.headers.get("Location"), new URL(url, location.href)).href;
}

function connected(pc) {
  if (["connected", "completed"].includes(pc.iceConnectionState)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const check = () => {
      if (["connected", "completed"].includes(pc.iceConnectionState)) resolve();
      else if (pc.iceConnectionState === "failed") reject(new Error("ICE failed"));
    };
    pc.addEventListener("iceconnectionstatechange", check);
  });
}

async function subscribe(publisher) {
  const pc = new RTCPeerConnection();
  pc.__confbenchRemote = publisher;  // lets confbench's instrument name the far end without reading stamps
  pc.addTransceiver("audio", { direction: "recvonly" });
  pc.addTransceiver("video", { direction: "recvonly" });
  const figure = document.createElement("figure");
  const video = document.createElement("video");
  video.autoplay = true; video.playsInline = true; video.muted = true;
  const caption = document.createElement("figcaption");
  caption.textContent = publisher;
  figure.append(video, caption);
  $("tiles").append(figure);
  const stream = new MediaStream();
  pc.addEventListener("track", (e) => { stream.addTrack(e.track); video.srcObject = stream; });
  const entry = { pc, resource: null, tile: figure };
  subscriptions.set(publisher, entry);
  try {
    entry.resource = await negotiate(pc, `/whep/${encodeURIComponent(room)}/${encodeURIComponent(publisher)}`);
  } catch (err) {
    subscriptions.delete(publisher); figure.remove(); pc.close();
    console.warn("subscribe", publisher, err);
    return null;
  }
  return pc;
}

async function drop(publisher) {
  const entry = subscriptions.get(publisher);
  if (!entry) return;
  subscriptions.delete(publisher);
  entry.tile.remove();
  entry.pc.close();
  if (entry.resource) await fetch(entry.resource, { method: "DELETE" }).catch(() => {});
}

async function refresh() {
  const answer = await fetch(`/rooms/${encodeURIComponent(room)}`);
  const present = answer.status === 200 ? (await answer.json()).publishers.filter((p) => p !== me) : [];
  for (const p of [...subscriptions.keys()]) if (!present.includes(p)) await drop(p);
  const fresh = present.filter((p) => !subscriptions.has(p));
  return (await Promise.all(fresh.map(subscribe))).filter(Boolean);
}

async function join() {
  me = $("name").value.trim();
  if (!me) { setState("error", "type a name first"); return; }
  $("join").disabled = true;
  setState("joining", "joining…");
  try {
    local = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
    const pc = new RTCPeerConnection();
    for (const track of local.getTracks()) pc.addTransceiver(track, { direction: "sendonly", streams: [local] });
    publication = { pc, resource: await negotiate(pc, `/whip/${encodeURIComponent(room)}/${encodeURIComponent(me)}`) };
    const first = await refresh();
    await Promise.all([publication.pc, ...first].map(connected));
    poller = setInterval(() => { if (!leaving) refresh().catch((e) => console.warn("refresh", e)); }, POLL_MS);
    $("leave").disabled = false;
    setState("in-call", `in the call as ${me}`);
  } catch (err) {
    setState("error", `could not join: ${err.message}`);
    $("join").disabled = false;
  }
}

async function leave() {
  leaving = true;
  clearInterval(poller);
  $("leave").disabled = true;
  await Promise.all([...subscriptions.keys()].map(drop));
  if (publication) {
    publication.pc.close();
    await fetch(publication.resource, { method: "DELETE" }).catch(() => {});
    publication = null;
  }
  if (local) local.getTracks().forEach((t) => t.stop());
  setState("left", "left the call");
}

$("join").addEventListener("click", join);
$("leave").addEventListener("click", leave);
