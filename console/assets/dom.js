// DOM helpers. Everything the console shows is built here with createElement /
// createElementNS and text nodes: no markup is ever parsed from strings, so text from the
// API (payloads, descriptions, URLs, response bodies, error messages) can only ever be
// text.

const SVG_NS = 'http://www.w3.org/2000/svg';

/** Attributes that must never be set from here (inline styles break the CSP; event
 * handler attributes would be code). */
function checkAttribute(name) {
  const lower = name.toLowerCase();
  if (lower === 'style' || lower.startsWith('on') || lower === 'srcdoc') {
    throw new Error(`refusing to set attribute ${name}`);
  }
}

function apply(el, attrs) {
  if (!attrs) return;
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'text') {
      el.textContent = String(value);
    } else if (name === 'on') {
      for (const [type, handler] of Object.entries(value)) el.addEventListener(type, handler);
    } else {
      checkAttribute(name);
      el.setAttribute(name, value === true ? '' : String(value));
    }
  }
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/** `h('p', {class: 'x'}, 'text', otherNode)`: an HTML element; strings become text nodes. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  apply(el, attrs);
  append(el, children);
  return el;
}

/** The same for SVG elements. */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  apply(el, attrs);
  append(el, children);
  return el;
}

/** Replaces every child of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

let idCounter = 0;
/** A fresh id for label/aria wiring. */
export function uid(prefix) {
  idCounter += 1;
  return `${prefix}-${idCounter}`;
}

/** `2026-11-27T08:00:00.000Z` as a `<time>` showing `2026-11-27 08:00:00 UTC`. */
export function time(iso) {
  if (!iso) return h('span', null, '—');
  const shown = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/.test(iso)
    ? `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`
    : iso;
  return h('time', { datetime: iso }, shown);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** An in-app link to `#/<kind>/<id>`, only for ids the API generated (UUIDs): no other
 * data ever ends up in an href. */
export function routeLink(kind, id, ...children) {
  if (typeof id !== 'string' || !UUID.test(id)) return h('span', null, ...children);
  return h('a', { href: `#/${kind}/${id}` }, ...children);
}

export function isUuid(id) {
  return typeof id === 'string' && UUID.test(id);
}
