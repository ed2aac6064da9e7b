// confbench's LiveKit join page, built on LiveKit's own JavaScript SDK (livekit-client), bundled by esbuild
// when confbench installs the page (harness/testbed/livekit_page.py): nothing is fetched at run time.
// A person (or a browser participant) has a name and an access token (filled in by confbench's prepare hook,
// never in the URL), presses Join; the page publishes camera and microphone and shows everyone it receives.
// Settings that make it measurable, as a native participant is: one video layer (no simulcast), no RED or
// DTX on audio, no adaptive stream or dynacast (every stream is received at the size it is sent).
import { Room, RoomEvent, Track, createLocalTracks } from "livekit-client";

const params = new URLSearchParams(location.search);
const serverUrl = params.get("url");
const roomName = params.get("room") || "confbench";
const codec = (params.get("codec") || "vp8").toLowerCase();
const $ = (id) => document.getElementById(id);
$("room").textContent = roomName;
let room = null;

function setState(state, text) { $("state").dataset.state = state; $("state").textContent = text; }

function tile(participant, track) {
  const figure = document.createElement("figure");
  figure.dataset.sid = track.sid;
  const element = track.attach();
  element.muted = true;
  const caption = document.createElement("figcaption");
  caption.textContent = participant.identity;
  figure.append(element, caption);
  $("tiles").append(figure);
}

async function join() {
  $("join").disabled = true;
  setState("joining", "joining");
  room = new Room({ adaptiveStream: false, dynacast: false,
                    publishDefaults: { simulcast: false, videoCodec: codec, red: false, dtx: false } });
  room.on(RoomEvent.TrackSubscribed, (track, publication, participant) => tile(participant, track));
  room.on(RoomEvent.TrackUnsubscribed, (track) => {
    track.detach();
    document.querySelectorAll(`figure[data-sid="${track.sid}"]`).forEach((f) => f.remove());
  });
  room.on(RoomEvent.Disconnected, () => setState("left", "left"));
  try {
    await room.connect(serverUrl, $("token").value, { autoSubscribe: true });
    const tracks = await createLocalTracks({ audio: true, video: true });
    for (const track of tracks) {
      await room.localParticipant.publishTrack(track, { simulcast: false, source: track.kind === Track.Kind.Video ? Track.Source.Camera : Track.Source.Microphone });
    }
    setState("in-call", `in the call as ${room.localParticipant.identity}`);
    $("leave").disabled = false;
  } catch (error) {
    setState("failed", `failed: ${error && error.message ? error.message : error}`);
    $("join").disabled = false;
  }
}

async function leave() {
  $("leave").disabled = true;
  if (room) await room.disconnect();
  setState("left", "left");
}

$("join").addEventListener("click", join);
$("leave").addEventListener("click", leave);
