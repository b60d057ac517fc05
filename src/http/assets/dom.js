// flowwatch page, part 1 of 3: DOM helpers and formatting shared by diagram.js and app.js.
// Elements are built with createElement and filled with text nodes; nothing here parses a
// string as HTML.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";

// ---------------------------------------------------------------------------------------------
// DOM helpers: attributes by setAttribute (never event-handler attributes), children as nodes
// or text.

function setAttributes(element, attributes) {
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (/^on/i.test(name)) throw new Error("event handler attributes are not allowed: " + name);
    element.setAttribute(name, value === true ? "" : String(value));
  }
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

function h(tag, attributes, ...children) {
  const element = document.createElement(tag);
  setAttributes(element, attributes);
  return append(element, children);
}

function s(tag, attributes, ...children) {
  const element = document.createElementNS(SVG_NS, tag);
  setAttributes(element, attributes);
  return append(element, children);
}

function link(href, ...children) {
  return h("a", { href }, ...children);
}

// ---------------------------------------------------------------------------------------------
// Formatting.

function toMillis(value) {
  if (value === null || value === undefined) return null;
  if (typeof value === "number") return value;
  const parsed = Date.parse(value);
  return Number.isNaN(parsed) ? null : parsed;
}

function formatTime(value) {
  const millis = toMillis(value);
  if (millis === null) return value === null || value === undefined ? "" : String(value);
  return new Date(millis).toISOString().replace("T", " ").replace(/\.000Z$/, "Z");
}

function formatDuration(value) {
  if (value === null || value === undefined) return null;
  if (typeof value === "string") return value;
  if (typeof value === "object") return value.text || formatDuration(value.ms);
  let millis = value;
  if (millis === 0) return "0s";
  let text = "";
  for (const [unit, size] of [["d", 86400000], ["h", 3600000], ["m", 60000], ["s", 1000], ["ms", 1]]) {
    if (millis >= size) {
      text += Math.floor(millis / size) + unit;
      millis %= size;
    }
  }
  return text;
}

function payloadText(payload) {
  if (payload === null || payload === undefined) return "";
  let value = payload;
  if (typeof payload === "string") {
    try { value = JSON.parse(payload); } catch (_) { return payload; }
  }
  return JSON.stringify(value, null, 2);
}

function list(value) {
  if (value === null || value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

function number(value) {
  return typeof value === "number" ? value : 0;
}

function instanceHref(flow, key) {
  return "#/flows/" + encodeURIComponent(flow) + "/instances/" + encodeURIComponent(key);
}

function flowHref(flow, query) {
  const params = new URLSearchParams(query || {}).toString();
  return "#/flows/" + encodeURIComponent(flow) + (params ? "?" + params : "");
}
