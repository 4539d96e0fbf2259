// The drawing page of `digits draw`: strokes on a 280×280 canvas (mouse, touch and pen
// through pointer events), or a photo; after each change (debounced) the canvas's ink or the
// photo's bytes go to the server, and its reading is shown: the 28×28 each model saw, resized
// and framed, each model's three most probable digits, and one sentence.
"use strict";

const SIDE = 280;
const PEN = 18;        // stroke width in canvas pixels: MNIST's strokes, at ten times the scale
const DEBOUNCE = 120;  // ms after the last change before the server is asked

const canvas = document.getElementById("canvas");
const ctx = canvas.getContext("2d", { willReadFrequently: true });
const strokes = [];    // each a list of [x, y] points
let photo = null;      // the dropped or picked file's bytes, while a photo is shown
let timer = null;
let busy = false;
let again = false;
let updates = 0;

function paper() {
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, SIDE, SIDE);
}

function drawStroke(points) {
  ctx.strokeStyle = "#000";
  ctx.fillStyle = "#000";
  ctx.lineWidth = PEN;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  if (points.length === 1) {
    ctx.beginPath();
    ctx.arc(points[0][0], points[0][1], PEN / 2, 0, 2 * Math.PI);
    ctx.fill();
    return;
  }
  ctx.beginPath();
  ctx.moveTo(points[0][0], points[0][1]);
  for (const [x, y] of points.slice(1)) ctx.lineTo(x, y);
  ctx.stroke();
}

function redraw() {
  paper();
  strokes.forEach(drawStroke);
}

function at(event) {
  const r = canvas.getBoundingClientRect();
  return [(event.clientX - r.left) * SIDE / r.width, (event.clientY - r.top) * SIDE / r.height];
}

canvas.addEventListener("pointerdown", (event) => {
  event.preventDefault();
  if (photo) { photo = null; strokes.length = 0; redraw(); }
  canvas.setPointerCapture(event.pointerId);
  strokes.push([at(event)]);
  redraw();
  changed();
});

canvas.addEventListener("pointermove", (event) => {
  if (!canvas.hasPointerCapture(event.pointerId) || strokes.length === 0) return;
  const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
  const stroke = strokes[strokes.length - 1];
  for (const e of (events.length ? events : [event])) stroke.push(at(e));
  redraw();
  changed();
});

for (const end of ["pointerup", "pointercancel"]) {
  canvas.addEventListener(end, (event) => {
    if (canvas.hasPointerCapture(event.pointerId)) canvas.releasePointerCapture(event.pointerId);
  });
}

document.getElementById("undo").addEventListener("click", () => {
  if (photo) { photo = null; strokes.length = 0; } else strokes.pop();
  redraw();
  changed();
});

document.getElementById("clear").addEventListener("click", () => {
  photo = null;
  strokes.length = 0;
  redraw();
  changed();
});

document.getElementById("file").addEventListener("change", (event) => {
  if (event.target.files.length) usePhoto(event.target.files[0]);
  event.target.value = "";
});

const drop = document.getElementById("drop");
for (const name of ["dragenter", "dragover"]) {
  drop.addEventListener(name, (event) => { event.preventDefault(); drop.classList.add("over"); });
}
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  if (event.dataTransfer.files.length) usePhoto(event.dataTransfer.files[0]);
});

// Shows the photo letterboxed on the canvas and sends its bytes as they are: the server
// reads the file itself, as `digits predict` does.
async function usePhoto(file) {
  const bytes = await file.arrayBuffer();
  const url = URL.createObjectURL(file);
  const img = new Image();
  img.onload = () => {
    paper();
    const k = Math.min(SIDE / img.width, SIDE / img.height);
    const w = img.width * k, h = img.height * k;
    ctx.drawImage(img, (SIDE - w) / 2, (SIDE - h) / 2, w, h);
    URL.revokeObjectURL(url);
  };
  img.src = url;
  strokes.length = 0;
  photo = bytes;
  changed();
}

// body[data-pending] is 1 from a change until its reading (or error) is shown: what a test
// waits on.
function changed() {
  clearTimeout(timer);
  timer = setTimeout(ask, DEBOUNCE);
  document.body.dataset.pending = "1";
}

// Ink levels of the canvas (1 ink, 0 paper), two decimals, as the JSON the server takes.
function drawingJson() {
  const data = ctx.getImageData(0, 0, SIDE, SIDE).data;
  const values = new Array(SIDE * SIDE);
  for (let i = 0; i < SIDE * SIDE; i++) {
    const ink = 1 - data[4 * i] / 255;
    values[i] = ink < 0.005 ? "0" : ink.toFixed(2);
  }
  return '{"pixels":[' + values.join(",") + "]}";
}

// One request at a time; a change made meanwhile is sent when it returns.
async function ask() {
  timer = null;
  if (busy) { again = true; return; }
  if (!photo && strokes.length === 0) { reset(); document.body.dataset.pending = "0"; return; }
  busy = true;
  try {
    const response = photo
      ? await fetch("api/photo", { method: "POST", body: photo,
                                   headers: { "Content-Type": "application/octet-stream" } })
      : await fetch("api/draw", { method: "POST", body: drawingJson(),
                                  headers: { "Content-Type": "application/json" } });
    const answer = await response.json();
    if (response.ok) show(answer); else fail(answer.error || response.statusText);
  } catch (e) {
    fail("the server did not answer (" + e.message + "); is `digits draw` still running?");
  } finally {
    busy = false;
    if (again) { again = false; ask(); }
    else if (timer === null) document.body.dataset.pending = "0";
  }
}

function reset() {
  for (const prep of document.querySelectorAll(".prep")) {
    prep.querySelector(".answers").replaceChildren();
    const seen = prep.querySelector(".seen").getContext("2d");
    seen.fillStyle = "#fff";
    seen.fillRect(0, 0, 28, 28);
  }
  document.getElementById("sentence").textContent = "Draw a digit on the left.";
  document.getElementById("error").hidden = true;
}

function fail(message) {
  const error = document.getElementById("error");
  error.textContent = message;
  error.hidden = false;
}

// The 28×28 the models saw, ink dark on white as it was drawn.
function paint(seen, image) {
  const c = seen.getContext("2d");
  const pixels = c.createImageData(28, 28);
  image.forEach((v, i) => {
    const g = Math.round(255 * (1 - v));
    pixels.data.set([g, g, g, 255], 4 * i);
  });
  c.putImageData(pixels, 0, 0);
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function modelAnswer(answer) {
  const box = el("div", "model");
  box.dataset.kind = answer.kind;
  box.dataset.best = answer.top[0].digit;
  const title = el("h3", null, answer.kind + " ");
  title.append(el("small", null, answer.model));
  box.append(title);
  for (const guess of answer.top) {
    const bar = el("div", "bar");
    const track = el("div", "track");
    const fill = el("div", "fill");
    fill.style.width = (100 * guess.probability).toFixed(1) + "%";
    track.append(fill);
    bar.append(el("span", "d", guess.digit), track,
               el("span", "p", (100 * guess.probability).toFixed(1) + "%"));
    box.append(bar);
  }
  return box;
}

function show(reading) {
  for (const prep of reading.preparations) {
    const box = document.querySelector(`.prep[data-framing="${prep.framing}"]`);
    paint(box.querySelector(".seen"), prep.image);
    box.querySelector(".answers").replaceChildren(...prep.answers.map(modelAnswer));
  }
  document.getElementById("sentence").textContent = reading.sentence;
  document.getElementById("error").hidden = true;
  window.lastReading = reading;
  updates += 1;
  document.body.dataset.updates = updates;
}

paper();
reset();
