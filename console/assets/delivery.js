// One delivery (#/deliveries/<id>): its facts, every attempt, the payload, and the
// admin's "Retry now", followed until the manual attempt is recorded.

import { h, replace, routeLink, time, uid } from './dom.js';
import { session, isAdmin } from './session.js';
import { NON_FINAL, POLL_MS, badge, describe, failure, loading, statusCode } from './parts.js';
import { action, announce, btn, isAbort, show } from './view.js';

/** How many times a delivery page refreshes itself before it stops waiting. */
const MAX_POLLS = 60;

function attemptsTable(attempts) {
  if (attempts.length === 0) return h('p', null, 'No attempt yet.');
  return h(
    'table',
    { class: 'list attempts', 'data-testid': 'attempts' },
    h('caption', null, 'Every attempt, oldest first'),
    h('thead', null, h('tr', null, ['#', 'Trigger', 'Started', 'Duration', 'HTTP status', 'Error', 'Response body'].map((t) => h('th', { scope: 'col' }, t)))),
    h(
      'tbody',
      null,
      attempts.map((a) =>
        h(
          'tr',
          { class: a.succeeded ? 'ok' : 'bad' },
          h('th', { scope: 'row', class: 'num' }, String(a.attempt_number)),
          h('td', null, String(a.trigger)),
          h('td', null, time(a.started_at)),
          h('td', { class: 'num' }, `${a.duration_ms} ms`),
          h('td', { class: 'num' }, statusCode(a.status_code)),
          h('td', null, a.error ? [h('strong', null, String(a.error.kind)), h('span', { class: 'sub' }, String(a.error.message))] : '—'),
          h('td', null, a.response_body ? h('pre', { class: 'body' }, a.response_body) : h('span', { class: 'muted' }, a.attempt_number === attempts.length ? '(empty)' : '(not kept)')),
        ),
      ),
    ),
  );
}

function deliveryFacts(d) {
  return describe([
    ['Event type', String(d.event_type)],
    ['Event ID', h('code', { class: 'wrap' }, String(d.event_id))],
    ['Status', badge(d.status)],
    ['Attempts', String(d.attempt_count)],
    ['Last HTTP status', statusCode(d.last_status_code)],
    ['Created', time(d.created_at)],
    ['Updated', time(d.updated_at)],
    ['Next attempt', d.next_attempt_at ? time(d.next_attempt_at) : '—'],
    ['Delivery ID', h('code', null, d.id)],
  ]);
}

function payloadView(payload) {
  return payload === null || payload === undefined
    ? h('p', null, 'The event has expired from storage: its payload is no longer kept.')
    : h('pre', { class: 'payload', 'data-testid': 'payload' }, JSON.stringify(payload, null, 2));
}

export function deliveryPage(view, id) {
  const back = h('p', null, h('a', { href: '#/endpoints' }, '← All endpoints'));
  const facts = h('div', null, loading('Loading the delivery…'));
  const actions = h('div', { class: 'actions' });
  const attemptsHolder = h('div');
  const payloadHolder = h('div');
  const live = h('p', { class: 'hint', 'data-testid': 'detail-live' });
  const attemptsTitle = uid('attempts-title');
  const payloadTitle = uid('payload-title');
  // A retry's attempt is awaited until the delivery shows this many attempts (0: none).
  let expectAttempts = 0;
  let currentAttempts = 0;
  let polls = 0;

  show(
    'Delivery',
    back,
    h('h1', null, 'Delivery'),
    facts,
    actions,
    live,
    h('section', { 'aria-labelledby': attemptsTitle }, h('h2', { id: attemptsTitle }, 'Attempts'), attemptsHolder),
    h('section', { 'aria-labelledby': payloadTitle }, h('h2', { id: payloadTitle }, 'Payload'), payloadHolder),
  );

  if (isAdmin()) {
    const retry = btn('Retry now', { class: 'primary' });
    retry.addEventListener(
      'click',
      action(view, retry, async () => {
        const before = currentAttempts;
        await view.settle(session.api.retryDelivery(id));
        announce('Retry queued: a manual attempt is being made.');
        expectAttempts = before + 1;
        polls = 0;
        await load();
      }),
    );
    replace(actions, retry);
  }

  const loader = view.loader();
  async function load() {
    const signal = loader.start();
    let d;
    try {
      d = await session.api.getDelivery(id, { signal });
    } catch (error) {
      if (!isAbort(error)) {
        replace(facts, failure(error, load));
        live.textContent = '';
      }
      return;
    }
    const attempts = Array.isArray(d.attempts) ? d.attempts : [];
    currentAttempts = Math.max(attempts.length, Number(d.attempt_count) || 0);
    replace(back, routeLink('endpoints', d.endpoint_id, '← The endpoint'));
    replace(facts, deliveryFacts(d));
    replace(attemptsHolder, attemptsTable(attempts));
    replace(payloadHolder, payloadView(d.payload));
    const waiting = NON_FINAL.has(d.status) || (expectAttempts > 0 && attempts.length < expectAttempts);
    if (waiting && polls < MAX_POLLS) {
      polls += 1;
      live.textContent = 'Updating every 2 seconds until this delivery settles.';
      loader.repeat(load, POLL_MS);
    } else {
      if (expectAttempts > 0 && attempts.length >= expectAttempts) {
        const last = attempts[attempts.length - 1];
        announce(`Manual attempt ${last.attempt_number}: ${last.succeeded ? 'succeeded' : 'failed'}${last.status_code ? ` (HTTP ${last.status_code})` : ''}.`);
      }
      expectAttempts = 0;
      live.textContent = '';
    }
  }

  load();
}
