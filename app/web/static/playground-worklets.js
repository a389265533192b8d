// Audio worklets of the playground page: the microphone cut into 20 ms frames at the line's rate,
// and a player whose queue holds the agent's audio and its checkpoints in order.

class MicFrames extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.rate = options.processorOptions.rate; // 8000 or 16000
    this.step = sampleRate / this.rate; // input samples per output sample (e.g. 6 at 48 kHz)
    this.frame = new Int16Array(this.rate / 50);
    this.filled = 0;
    this.sum = 0;
    this.count = 0;
    this.due = this.step;
    this.peak = 0;
  }

  process(inputs) {
    const input = inputs[0] && inputs[0][0];
    if (!input) return true;
    for (let i = 0; i < input.length; i++) {
      // an average over each output sample's span of input: a simple low-pass before decimation
      this.sum += input[i];
      this.count += 1;
      this.due -= 1;
      if (this.due > 0) continue;
      this.due += this.step;
      const value = Math.max(-1, Math.min(1, this.sum / this.count));
      this.sum = 0;
      this.count = 0;
      this.peak = Math.max(this.peak, Math.abs(value));
      this.frame[this.filled++] = Math.round(value * 32767);
      if (this.filled === this.frame.length) {
        this.port.postMessage({ frame: this.frame, peak: this.peak });
        this.frame = new Int16Array(this.frame.length);
        this.filled = 0;
        this.peak = 0;
      }
    }
    return true;
  }
}

class Player extends AudioWorkletProcessor {
  constructor() {
    super();
    this.queue = []; // {samples, offset} or {mark}
    this.peak = 0;
    this.quanta = 0;
    this.port.onmessage = (event) => {
      const message = event.data;
      if (message.type === "audio") this.queue.push({ samples: message.samples, offset: 0 });
      else if (message.type === "mark") this.queue.push({ mark: message.name });
      else if (message.type === "clear") {
        this.queue = []; // queued audio and its checkpoints are dropped: no ack, as on the line
        this.port.postMessage({ type: "cleared" });
      }
    };
  }

  process(_inputs, outputs) {
    const out = outputs[0][0];
    let written = 0;
    while (this.queue.length) {
      const head = this.queue[0];
      if (head.mark !== undefined) {
        // everything queued before this checkpoint has been played
        this.port.postMessage({ type: "played", name: head.mark });
        this.queue.shift();
        continue;
      }
      if (written === out.length) break;
      const n = Math.min(out.length - written, head.samples.length - head.offset);
      out.set(head.samples.subarray(head.offset, head.offset + n), written);
      for (let i = written; i < written + n; i++) this.peak = Math.max(this.peak, Math.abs(out[i]));
      written += n;
      head.offset += n;
      if (head.offset === head.samples.length) this.queue.shift();
    }
    if (++this.quanta % 8 === 0) {
      this.port.postMessage({ type: "level", peak: this.peak, playing: written > 0 });
      this.peak = 0;
    }
    return true;
  }
}

registerProcessor("mic-frames", MicFrames);
registerProcessor("player", Player);
