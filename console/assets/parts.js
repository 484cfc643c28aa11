// Small renderers several views share: status badges, lists of facts, the loading and
// failure placeholders.

import { h } from './dom.js';
import { btn, errorText } from './view.js';

/** Every delivery status; `pending` and `retrying` change on their own (NON_FINAL),
 * `paused` waits for a resume. */
export const STATUSES = ['pending', 'retrying', 'succeeded', 'failed', 'paused'];
export const NON_FINAL = new Set(['pending', 'retrying']);
/** How often a screen showing a delivery in progress refreshes itself. */
export const POLL_MS = 2000;

export function badge(status) {
  const known = STATUSES.includes(status) ? status : 'other';
  return h('span', { class: `badge ${known}` }, String(status));
}

/** What paused an endpoint (`paused_reason`), in words. */
const PAUSED_BY = {
  manual: 'by an admin',
  circuit_breaker: 'by the circuit breaker: too many consecutive failures',
  gone: 'by the service: the receiver answered 410 Gone',
};

export function activeBadge(endpoint) {
  if (endpoint.is_active) return h('span', { class: 'badge active' }, 'Active');
  const reason = Object.hasOwn(PAUSED_BY, endpoint.paused_reason) ? PAUSED_BY[endpoint.paused_reason] : null;
  return h('span', null, h('span', { class: 'badge paused' }, 'Paused'), reason ? h('span', { class: 'reason' }, ` ${reason}`) : null);
}

export function eventTypeList(types) {
  return h('ul', { class: 'tags' }, (Array.isArray(types) ? types : []).map((t) => h('li', null, String(t))));
}

/** A description list of `[term, value]` pairs (falsy pairs left out). */
export function describe(pairs) {
  return h('dl', { class: 'facts' }, pairs.filter(Boolean).map(([term, value]) => [h('dt', null, term), h('dd', null, value)]));
}

/** An HTTP status code, or a dash when there is none. */
export function statusCode(code) {
  return code === null || code === undefined ? '—' : String(code);
}

export function loading(text) {
  return h('p', { class: 'loading', 'aria-busy': 'true' }, text);
}

export function failure(error, retry) {
  return h('div', { class: 'failure' }, h('p', { class: 'error-text' }, errorText(error)), retry ? btn('Try again', { on: { click: retry } }) : null);
}
