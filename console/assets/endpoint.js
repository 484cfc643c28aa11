// One endpoint (#/endpoints/<id>): its details, a secret shown once, the admin's actions,
// a recovery's progress, the attempts-per-hour chart and the delivery log.

import { h, replace, time, uid } from './dom.js';
import { session, isAdmin } from './session.js';
import { attemptsChart } from './chart.js';
import { activeBadge, describe, eventTypeList, failure, loading } from './parts.js';
import { action, announce, btn, confirmDialog, errorText, isAbort, navigate, show } from './view.js';
import { confirmDelete, findEndpoint, setActive } from './endpoints.js';
import { deliveryLog } from './deliveries.js';
import { recoverDialog, recoveryProgress } from './recovery.js';

function secretPanel(secret, heading) {
  const code = h('code', { class: 'secret', 'data-testid': 'secret' }, secret);
  const copy = btn('Copy secret', { class: 'primary' });
  copy.addEventListener('click', async () => {
    try {
      if (!navigator.clipboard || !window.isSecureContext) throw new Error('no clipboard');
      await navigator.clipboard.writeText(secret);
      announce('Secret copied to the clipboard.');
    } catch {
      const range = document.createRange();
      range.selectNodeContents(code);
      const selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      announce('Copying is not available here: the secret is selected, press Ctrl+C (or ⌘C) to copy it.');
    }
  });
  const titleId = uid('secret-title');
  return h(
    'section',
    { class: 'secret-panel', 'aria-labelledby': titleId },
    h('h2', { id: titleId }, heading),
    h('p', null, 'Copy it now and keep it somewhere safe: it is shown only once, and leaving this page forgets it. Receivers use it to verify signatures.'),
    h('p', null, code),
    copy,
  );
}

/** The chart section: its period buttons, and `reload()` for the shown period. A switch
 * of period while an answer is on its way aborts that answer: only the newest draws. */
function chartSection(view, id) {
  const holder = h('div', { class: 'chart-holder' });
  const titleId = uid('chart-title');
  const loader = view.loader();
  let period = '24h';

  async function reload() {
    const signal = loader.start();
    const label = period === '24h' ? '24 hours' : '7 days';
    holder.setAttribute('aria-busy', 'true');
    try {
      replace(holder, attemptsChart(await session.api.stats(id, period, { signal }), label));
    } catch (error) {
      if (isAbort(error)) return;
      replace(holder, h('p', { class: 'error-text' }, `The chart could not be loaded: ${errorText(error)}`));
    }
    holder.removeAttribute('aria-busy');
  }

  const w24 = btn('24 hours', { class: 'toggle', 'aria-pressed': 'true' });
  const w7 = btn('7 days', { class: 'toggle', 'aria-pressed': 'false' });
  for (const [button, value] of [
    [w24, '24h'],
    [w7, '7d'],
  ]) {
    button.addEventListener('click', () => {
      period = value;
      w24.setAttribute('aria-pressed', String(value === '24h'));
      w7.setAttribute('aria-pressed', String(value === '7d'));
      reload();
    });
  }
  const section = h(
    'section',
    { 'aria-labelledby': titleId },
    h('h2', { id: titleId }, 'Attempts per hour'),
    h('div', { class: 'actions', role: 'group', 'aria-label': 'Chart period' }, w24, w7),
    holder,
  );
  return { section, reload };
}

export function endpointPage(view, id) {
  const fresh = session.freshSecret;
  session.freshSecret = null;
  const secret = fresh && fresh.endpointId === id ? fresh.secret : null;
  const secretHolder = h('div', null, secret ? secretPanel(secret, 'Signing secret') : null);
  const facts = h('div', null, loading('Loading the endpoint…'));
  const actions = h('div', { class: 'actions' });
  const recoveryHolder = h('div');
  const logHolder = h('div');
  const logTitle = uid('log-title');
  const chart = chartSection(view, id);
  let endpoint = null;

  show(
    'Endpoint',
    h('p', null, h('a', { href: '#/endpoints' }, '← All endpoints')),
    h('h1', null, 'Endpoint'),
    secretHolder,
    facts,
    actions,
    recoveryHolder,
    chart.section,
    h('section', { 'aria-labelledby': logTitle }, h('h2', { id: logTitle }, 'Deliveries'), logHolder),
  );

  const endpointLoader = view.loader();
  async function loadEndpoint() {
    const signal = endpointLoader.start();
    try {
      endpoint = await findEndpoint(id, signal);
    } catch (error) {
      if (!isAbort(error)) replace(facts, failure(error, loadEndpoint));
      return;
    }
    if (!endpoint) {
      replace(facts, h('p', null, 'This endpoint does not exist (it may have been deleted). ', h('a', { href: '#/endpoints' }, 'All endpoints')));
      replace(actions);
      return;
    }
    replace(
      facts,
      describe([
        ['URL', h('span', { class: 'wrap', 'data-testid': 'endpoint-url' }, endpoint.url)],
        ['Description', endpoint.description || h('span', { class: 'muted' }, '—')],
        ['Event types', eventTypeList(endpoint.event_types)],
        ['Status', activeBadge(endpoint)],
        ['Consecutive failures', String(endpoint.consecutive_failures)],
        ['Created', time(endpoint.created_at)],
        ['Updated', time(endpoint.updated_at)],
        ['ID', h('code', null, endpoint.id)],
      ]),
    );
    if (isAdmin()) renderActions();
    log.setEventTypes(endpoint.event_types);
  }

  function renderActions() {
    const test = btn('Send test event', { class: 'primary' });
    test.addEventListener(
      'click',
      action(view, test, async () => {
        const sent = await view.settle(session.api.sendTest(id));
        announce(`Test event sent: delivery ${sent.delivery_id} is queued.`);
        await log.reset();
      }),
    );
    const edit = h('a', { href: `#/endpoints/${id}/edit`, class: 'button secondary' }, 'Edit');
    const toggle = btn(endpoint.is_active ? 'Pause' : 'Resume', { class: 'secondary' });
    toggle.addEventListener(
      'click',
      action(view, toggle, async () => {
        announce(await setActive(view, endpoint, !endpoint.is_active));
        await loadEndpoint();
        await log.reload();
      }),
    );
    const rotate = btn('Rotate secret', { class: 'secondary' });
    rotate.addEventListener(
      'click',
      action(view, rotate, async () => {
        const ok = await confirmDialog(view, {
          title: 'Rotate the signing secret?',
          body: [h('p', null, 'A new secret replaces the current one at once: attempts made from now on are signed with the new secret only. Update your receiver right away.')],
          confirmLabel: 'Rotate secret',
        });
        if (!ok) return;
        const rotated = await view.settle(session.api.rotateSecret(id));
        replace(secretHolder, secretPanel(rotated.secret, 'New signing secret'));
        announce('Secret rotated. Copy the new secret now: it is shown only once.');
        secretHolder.querySelector('h2')?.setAttribute('tabindex', '-1');
        secretHolder.querySelector('h2')?.focus();
      }),
    );
    const recover = btn('Recover failed deliveries', { class: 'secondary' });
    recover.addEventListener('click', () => recoverDialog(view, id, followRecovery));
    const del = btn('Delete', { class: 'danger' });
    del.addEventListener(
      'click',
      action(view, del, async () => {
        if (await confirmDelete(view, endpoint)) navigate('#/endpoints', 'Endpoint deleted.');
      }),
    );
    replace(actions, test, edit, toggle, rotate, recover, del);
  }

  const log = deliveryLog(view, id, logHolder, () => chart.reload());
  const followRecovery = recoveryProgress(view, recoveryHolder, async () => {
    await log.reload();
    chart.reload();
  });
  loadEndpoint();
  chart.reload();
  log.reset();
}
