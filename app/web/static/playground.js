// The playground page: a browser call to the agent over the Vobiz media-stream protocol.
"use strict";

const $ = (id) => document.getElementById(id);
let call = null;

// --- G.711 μ-law ---------------------------------------------------------------------------
const MULAW_DECODE = new Int16Array(256);
for (let i = 0; i < 256; i++) {
  const u = ~i & 0xff;
  let magnitude = (((u & 0x0f) << 3) + 0x84) << ((u & 0x70) >> 4);
  MULAW_DECODE[i] = u & 0x80 ? 0x84 - magnitude : magnitude - 0x84;
}

function mulawEncode(sample) {
  const sign = sample < 0 ? 0x80 : 0;
  let magnitude = Math.min(Math.abs(sample), 32635) + 0x84;
  let exponent = 7;
  for (let mask = 0x4000; (magnitude & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
  const mantissa = (magnitude >> (exponent + 3)) & 0x0f;
  return ~(sign | (exponent << 4) | mantissa) & 0xff;
}

// --- wire ----------------------------------------------------------------------------------
function toBase64(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

function fromBase64(text) {
  const raw = atob(text);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

function encodeFrame(pcm, encoding) {
  if (encoding === "audio/x-mulaw") return pcm.reduce((out, s, i) => ((out[i] = mulawEncode(s)), out), new Uint8Array(pcm.length));
  const bytes = new Uint8Array(pcm.length * 2);
  const view = new DataView(bytes.buffer);
  pcm.forEach((s, i) => view.setInt16(i * 2, s, true)); // L16, little-endian as Vobiz sends it
  return bytes;
}

function decodeAudio(bytes, contentType) {
  if (contentType.includes("mulaw")) return Float32Array.from(bytes, (b) => MULAW_DECODE[b] / 32768);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(bytes.byteLength >> 1);
  for (let i = 0; i < out.length; i++) out[i] = view.getInt16(i * 2, true) / 32768;
  return out;
}

function resample(samples, from, to, state) {
  // linear interpolation, carrying the last sample across chunks
  if (from === to) return samples;
  const out = new Float32Array(Math.floor(((samples.length) * to) / from));
  const step = from / to;
  for (let i = 0; i < out.length; i++) {
    const x = i * step;
    const j = Math.floor(x);
    const a = j === 0 ? state.last : samples[j - 1];
    const b = samples[Math.min(j, samples.length - 1)];
    out[i] = a + (b - a) * (x - j);
  }
  state.last = samples[samples.length - 1] ?? state.last;
  return out;
}

// --- page ----------------------------------------------------------------------------------
function setStatus(text, state) {
  const el = $("status");
  el.textContent = text;
  el.dataset.state = state;
}

function addLine(speaker, text, interrupted) {
  const li = document.createElement("li");
  li.className = speaker + (interrupted ? " cut" : "");
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = speaker === "caller" ? "Agent heard" : "Agent said";
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text;
  li.append(who, body);
  if (interrupted) {
    const mark = document.createElement("span");
    mark.className = "cutmark";
    mark.title = "you cut in here: the rest was not played";
    mark.textContent = "✂ cut";
    li.append(mark);
  }
  $("transcript").append(li);
  li.scrollIntoView({ block: "nearest" });
}

function addLatency(turn, ms) {
  const row = document.createElement("tr");
  row.dataset.turn = turn;
  const cells = [turn, ms.stt_final, ms.turn_end, ms.llm_first_token, ms.tts_first_audio, ms.first_play_audio];
  for (const value of cells) {
    const td = document.createElement("td");
    td.textContent = value === undefined ? "–" : String(value);
    row.append(td);
  }
  $("latency").append(row);
}

async function startCall() {
  $("talk").disabled = true;
  setStatus("Connecting…", "connecting");
  const persona = $("persona").value;
  const wideband = $("format").value === "l16";
  const encoding = wideband ? "audio/x-l16" : "audio/x-mulaw";
  const rate = wideband ? 16000 : 8000;
  const response = await fetch("/playground/calls", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ persona }),
  });
  if (!response.ok) {
    setStatus(`Cannot start a call (${response.status})`, "error");
    $("talk").disabled = false;
    return;
  }
  const info = await response.json();
  const audio = new AudioContext();
  await audio.audioWorklet.addModule("/assets/playground-worklets.js");
  const mic = await navigator.mediaDevices.getUserMedia({
    audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
  });
  const frames = new AudioWorkletNode(audio, "mic-frames", { processorOptions: { rate } });
  audio.createMediaStreamSource(mic).connect(frames);
  const player = new AudioWorkletNode(audio, "player", { outputChannelCount: [1] });
  player.connect(audio.destination);
  await audio.resume();

  const ws = (path) => new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${path}`);
  const streamId = crypto.randomUUID();
  const media = ws(info.media_path);
  const feed = ws(info.events_path);
  let sequence = 0;
  let chunk = 0;
  const send = (message) => {
    if (media.readyState === WebSocket.OPEN) media.send(JSON.stringify({ sequenceNumber: sequence++, ...message }));
  };
  const upsample = { last: 0 };
  call = { audio, mic, media, feed, player };
  window.playground = { callId: info.call_id, played: [], cleared: 0, audioFrames: 0 };

  media.onopen = () => {
    send({
      event: "start",
      start: { callId: info.call_id, streamId, accountId: "playground", tracks: ["inbound"],
               mediaFormat: { encoding, sampleRate: rate } },
      extra_headers: "{}",
    });
    frames.port.onmessage = (event) => {
      $("mic-level").value = event.data.peak;
      send({ streamId, event: "media",
             media: { track: "inbound", timestamp: String(Date.now()), chunk: chunk++,
                      payload: toBase64(encodeFrame(event.data.frame, encoding)) },
             extra_headers: "{}" });
    };
    setStatus("On the call", "live");
    $("hangup").disabled = false;
  };
  media.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.event === "playAudio") {
      const { contentType, sampleRate, payload } = message.media;
      const samples = resample(decodeAudio(fromBase64(payload), contentType), sampleRate, audio.sampleRate, upsample);
      player.port.postMessage({ type: "audio", samples }, [samples.buffer]);
      window.playground.audioFrames++;
      window.playground.playing = `${contentType};rate=${sampleRate}`;
    } else if (message.event === "checkpoint") {
      player.port.postMessage({ type: "mark", name: message.name });
    } else if (message.event === "clearAudio") {
      player.port.postMessage({ type: "clear" });
    } else if (message.event === "stop") {
      media.close(1000);
    }
  };
  player.port.onmessage = (event) => {
    const message = event.data;
    if (message.type === "played") {
      window.playground.played.push(message.name);
      send({ event: "playedStream", streamId, name: message.name });
    } else if (message.type === "cleared") {
      window.playground.cleared++;
      send({ event: "clearedAudio", streamId });
    } else if (message.type === "level") {
      $("agent-level").value = message.peak;
    }
  };
  media.onclose = () => endCall("Call ended");
  media.onerror = () => setStatus("The media connection failed", "error");
  feed.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "transcript") {
      addLine(message.speaker, message.text, message.interrupted);
      const timed = message.latency_ms && Object.keys(message.latency_ms).length > 0; // not the greeting
      if (timed && !document.querySelector(`#latency tr[data-turn="${message.turn}"]`)) {
        addLatency(message.turn, message.latency_ms);
      }
    }
  };
}

function endCall(text) {
  if (!call) return;
  const { audio, mic, media, feed } = call;
  call = null;
  mic.getTracks().forEach((track) => track.stop());
  if (media.readyState === WebSocket.OPEN) media.close(1000);
  setTimeout(() => feed.close(), 2000); // the last lines of the conversation may still arrive
  audio.close();
  setStatus(text, "idle");
  $("talk").disabled = false;
  $("hangup").disabled = true;
}

$("talk").addEventListener("click", () => startCall().catch((error) => {
  setStatus(`Cannot start: ${error.message}`, "error");
  $("talk").disabled = false;
}));
$("hangup").addEventListener("click", () => endCall("You hung up"));
