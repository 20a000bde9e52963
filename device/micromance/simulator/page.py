"""The one page of ``micromance simulate --web``: plain HTML, CSS and JavaScript, no framework.

Kept in a module (not a file beside it) so it ships with the package without package data.
The script asks ``/api/state`` five times a second and reloads a screen image only when its
``version`` changed; the buttons POST JSON to ``/api/unit/<n>/<action>`` (a JSON body can only
come from this page: another site's form cannot send one without the browser asking first).
"""

from __future__ import annotations

#: How often the page asks for news, in milliseconds.
POLL_MS = 200

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Micromance simulator</title>
<style>
  :root { color-scheme: dark; }
  body { margin: 0; padding: 12px; background: #15171a; color: #e8e6e3;
         font: 16px/1.4 "DejaVu Sans", system-ui, sans-serif; }
  h1 { font-size: 1.15rem; margin: 0 0 10px; font-weight: 600; }
  .units { display: flex; flex-wrap: wrap; gap: 14px; }
  .unit { flex: 1 1 330px; max-width: 560px; background: #202328; border-radius: 14px;
          padding: 12px; box-sizing: border-box; }
  .top { display: flex; align-items: center; justify-content: space-between; gap: 8px; }
  .name { font-weight: 600; font-size: 1.1rem; }
  .link { font-size: .85rem; color: #9aa0a6; }
  .screen { display: block; width: 100%; margin: 10px 0; background: #000;
            image-rendering: pixelated; border: 6px solid #000; border-radius: 6px;
            box-sizing: border-box; aspect-ratio: 2 / 1; }
  .led { width: 22px; height: 22px; border-radius: 50%; background: #3a1d1d;
         box-shadow: inset 0 0 4px #000; flex: none; }
  .led[data-mode="on"] { background: #ff4d5a; box-shadow: 0 0 14px #ff4d5a; }
  .led[data-mode="pulse"] { background: #ff4d5a; animation: breathe 1.8s ease-in-out infinite; }
  @keyframes breathe { 0%, 100% { opacity: 1; box-shadow: 0 0 16px #ff4d5a; }
                       50% { opacity: .15; box-shadow: none; } }
  .buttons { display: grid; grid-template-columns: 1fr 1fr; gap: 8px; }
  button { font: inherit; padding: 12px 6px; border-radius: 10px; border: 0;
           background: #33373d; color: inherit; cursor: pointer; }
  button.main { background: #8c2f39; font-weight: 600; }
  button:active { filter: brightness(1.3); }
  .small { grid-column: span 2; display: grid; grid-template-columns: repeat(3, 1fr); gap: 8px; }
  .small button { font-size: .85rem; padding: 8px 4px; }
  .facts { font-size: .85rem; color: #9aa0a6; margin-top: 8px; }
  .facts a { color: #8ab4f8; }
  #problem { color: #ffb4a9; min-height: 1.4em; font-size: .9rem; }
</style>
</head>
<body>
<h1>Two units, one private broker</h1>
<div id="problem" role="status"></div>
<div class="units" id="units"></div>
<template id="unit-template">
  <section class="unit">
    <div class="top">
      <div><div class="name"></div><div class="link"></div></div>
      <div class="led" data-mode="off" title="the light"></div>
    </div>
    <img class="screen" alt="the unit's screen" width="512" height="256">
    <div class="buttons">
      <button class="main" data-action="thanks">THANKS</button>
      <button data-action="next">NEXT</button>
      <div class="small">
        <button data-action="done">Done (hold NEXT)</button>
        <button data-action="week">Week (both)</button>
        <button data-action="pair">Pair (hold both)</button>
      </div>
    </div>
    <div class="facts"><span class="counts"></span>
      <a class="page" target="_blank" hidden></a></div>
  </section>
</template>
<script>
"use strict";
const POLL_MS = __POLL_MS__;
const units = document.getElementById("units");
const problem = document.getElementById("problem");
const cards = [];

function card(index) {
  if (cards[index]) return cards[index];
  const node = document.getElementById("unit-template").content.firstElementChild
    .cloneNode(true);
  node.id = "unit-" + index;
  node.querySelector(".screen").id = "unit-" + index + "-screen";
  node.querySelector(".led").id = "unit-" + index + "-led";
  node.querySelector(".page").id = "unit-" + index + "-page";
  for (const button of node.querySelectorAll("button")) {
    button.id = "unit-" + index + "-" + button.dataset.action;
    button.addEventListener("click", () => act(index, button.dataset.action));
  }
  units.appendChild(node);
  cards[index] = {node: node, version: null};
  return cards[index];
}

async function act(index, action) {
  try {
    const answer = await fetch("api/unit/" + index + "/" + action, {
      method: "POST", headers: {"Content-Type": "application/json"}, body: "{}"});
    const body = await answer.json();
    problem.textContent = body.ok ? "" : body.error;
  } catch (error) {
    problem.textContent = "The simulator does not answer (stopped?)";
  }
  poll();
}

function show(index, unit) {
  const c = card(index);
  c.node.querySelector(".name").textContent = unit.name;
  c.node.querySelector(".link").textContent = unit.link +
    (unit.partner_online === null ? "" : unit.partner_online ? ", partner online"
                                                               : ", partner away");
  const led = c.node.querySelector(".led");
  led.dataset.mode = unit.light.mode;
  led.dataset.level = unit.light.level;
  const screen = c.node.querySelector(".screen");
  if (c.version !== unit.screen.version) {
    c.version = unit.screen.version;
    screen.src = "unit/" + index + "/screen.png?v=" + unit.screen.version;
    screen.dataset.version = unit.screen.version;
  }
  screen.style.opacity = unit.screen.asleep ? 0.15 : Math.max(0.35, unit.screen.contrast / 255);
  c.node.querySelector(".counts").textContent = "sent " + unit.sent_total +
    " · received " + unit.received_total + " · screen: " + unit.mode +
    (unit.holding ? " · holding…" : "") + (unit.page ? " ·" : "");
  const page = c.node.querySelector(".page");
  const label = unit.name + "'s own page";
  if (unit.page && (page.hidden || page.textContent !== label)) {
    page.href = unit.page;
    page.textContent = label;  // a new name from its Settings shows here too
    page.hidden = false;
  }
}

let polling = false;
async function poll() {
  if (polling) return;
  polling = true;
  try {
    const answer = await fetch("api/state", {cache: "no-store"});
    const state = await answer.json();
    state.units.forEach((unit, index) => show(index, unit));
    if (problem.textContent.startsWith("The simulator")) problem.textContent = "";
  } catch (error) {
    problem.textContent = "The simulator does not answer (stopped?)";
  } finally {
    polling = false;
  }
}
poll();
setInterval(poll, POLL_MS);
</script>
</body>
</html>
""".replace("__POLL_MS__", str(POLL_MS))
