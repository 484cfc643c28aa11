// The AgentVista Webhooks console: a small single-page app over the public API.
// Views are plain functions that build DOM nodes (see dom.js: text from the API is only
// ever set as text), routed on the URL fragment (#/endpoints, #/endpoints/<id>,
// #/deliveries/<id>). A portal link's #token=... is read first and removed at once.

import { h, replace, uid, time, routeLink, isUuid } from './dom.js';
import { forgetKey, getKeyInfo, orgApi, setUnauthorizedHandler, storedKey, storeKey } from './api.js';
import { attemptsChart } from './chart.js';

const APP_NAME = 'AgentVista Webhooks';
const POLL_MS = 2000;
const RECOVERY_POLL_MS = 1000;
/** Delivery statuses that change on their own; `paused` waits for a resume. */
const NON_FINAL = new Set(['pending', 'retrying']);
const STATUSES = ['pending', 'retrying', 'succeeded', 'failed', 'paused'];
const PAGE_SIZE = 20;

const session = { org: null, role: null, api: null };
/** A secret to show once, on the next render of its endpoint's page. */
let freshSecret = null;

// ---------------------------------------------------------------- layout and status

const main = document.getElementById('app');
const header = h('header', { class: 'site-header' });
const statusEl = h('div', { class: 'status', role: 'status', 'aria-live': 'polite', 'aria-atomic': 'true', 'data-testid': 'status' });
const viewEl = h('div', { class: 'view' });

function setupLayout() {
  document.body.insertBefore(header, main);
  replace(main, statusEl, viewEl);
}

/** Shows a result or an error in the live region (announced to screen readers). */
function announce(message, kind = 'info') {
  statusEl.className = `status ${kind}`;
  statusEl.textContent = message;
}

function clearStatus() {
  statusEl.className = 'status';
  statusEl.textContent = '';
}

function errorText(error) {
  return error && typeof error.message === 'string' && error.message ? error.message : 'Something went wrong.';
}

function renderHeader() {
  const children = [h('p', { class: 'brand' }, APP_NAME)];
  if (session.org) {
    children.push(
      h('nav', { 'aria-label': 'Main' }, h('a', { href: '#/endpoints', 'data-nav': 'endpoints' }, 'Endpoints')),
      h(
        'p',
        { class: 'who', 'data-testid': 'who' },
        'Organisation ',
        h('strong', null, session.org),
        ', role ',
        h('strong', null, session.role),
      ),
      h('button', { type: 'button', class: 'secondary', on: { click: () => signOut('Signed out.') } }, 'Sign out'),
    );
  }
  replace(header, ...children);
}

// ---------------------------------------------------------------- views and their timers

let current = { gen: 0, timers: new Set() };

/** Starts a new view: stops the previous one's timers; its late answers are ignored. */
function newView() {
  for (const t of current.timers) clearTimeout(t);
  // A dialog belongs to the view that opened it (e.g. the browser's Back while one is open).
  for (const dialog of document.querySelectorAll('dialog[open]')) dialog.close();
  const ctx = {
    gen: current.gen + 1,
    timers: new Set(),
    alive: () => current === ctx,
    later(fn, ms) {
      const t = setTimeout(() => {
        ctx.timers.delete(t);
        if (ctx.alive()) fn();
      }, ms);
      ctx.timers.add(t);
      return t;
    },
    cancel(t) {
      if (t) {
        clearTimeout(t);
        ctx.timers.delete(t);
      }
    },
    /** For a loader that can overlap itself (a refresh while one is in flight): each call
     * of the returned begin() gives a check that holds only while this view is alive and
     * no later begin() has happened, so an older answer never draws over a newer one. */
    latest() {
      let started = 0;
      return () => {
        const mine = ++started;
        return () => ctx.alive() && mine === started;
      };
    },
  };
  current = ctx;
  return ctx;
}

/** Renders a view's nodes and moves focus to its heading (for keyboard and screen readers). */
function show(title, ...nodes) {
  document.title = `${title} — ${APP_NAME}`;
  replace(viewEl, ...nodes);
  const target = viewEl.querySelector('[data-autofocus]') || viewEl.querySelector('h1');
  if (target) {
    if (!target.hasAttribute('tabindex') && target.tagName === 'H1') target.setAttribute('tabindex', '-1');
    target.focus();
  }
}

function isAdmin() {
  return session.role === 'admin';
}

/** Runs an action from a button: ignores it meanwhile (without `disabled`, so focus
 * stays on it, e.g. when a dialog it opened closes), shows any error, never throws. */
function action(button, fn) {
  return async (event) => {
    if (event) event.preventDefault();
    if (button.disabled || button.getAttribute('aria-disabled') === 'true') return;
    const owner = current;
    button.setAttribute('aria-disabled', 'true');
    button.setAttribute('aria-busy', 'true');
    try {
      await fn();
    } catch (error) {
      // A 401 has already signed out, with its own message.
      if (current === owner && !(error && error.status === 401 && !session.org)) announce(errorText(error), 'error');
    } finally {
      button.removeAttribute('aria-disabled');
      button.removeAttribute('aria-busy');
    }
  };
}

function btn(label, attrs = {}) {
  return h('button', { type: 'button', ...attrs }, label);
}

let pendingAnnouncement = null;
function navigate(hash, message) {
  pendingAnnouncement = message || null;
  if (location.hash === hash) route();
  else location.hash = hash;
}

// ---------------------------------------------------------------- dialogs

/** A modal <dialog>; Escape or Cancel closes it, and focus returns where it was. */
function openDialog(title, build) {
  const owner = current;
  const opener = document.activeElement;
  const titleId = uid('dialog-title');
  const dialog = h('dialog', { class: 'dialog', 'aria-labelledby': titleId });
  const close = () => {
    if (dialog.open) dialog.close();
  };
  const done = new Promise((resolve) => {
    dialog.addEventListener('close', () => {
      dialog.remove();
      // Closed by a navigation: the new view places focus itself.
      if (current !== owner) return resolve();
      const back = opener && opener.isConnected ? opener : viewEl.querySelector('h1');
      if (back && typeof back.focus === 'function') back.focus();
      resolve();
    });
  });
  dialog.append(h('h2', { id: titleId }, title), ...build(close));
  document.body.append(dialog);
  dialog.showModal();
  return { dialog, close, done };
}

/** Asks a yes/no question; resolves true only on the confirm button. */
function confirmDialog({ title, body, confirmLabel, danger = false }) {
  let confirmed = false;
  const { done } = openDialog(title, (close) => {
    const cancel = btn('Cancel', { class: 'secondary', 'data-autofocus': '' });
    const ok = btn(confirmLabel, { class: danger ? 'danger' : 'primary' });
    cancel.addEventListener('click', close);
    ok.addEventListener('click', () => {
      confirmed = true;
      close();
    });
    queueMicrotask(() => cancel.focus());
    return [h('div', { class: 'dialog-body' }, ...body), h('div', { class: 'actions' }, cancel, ok)];
  });
  return done.then(() => confirmed);
}

// ---------------------------------------------------------------- sign-in

/** The token a portal link carries (`#token=...`), taken out of the address bar and
 * history before anything else happens; '' if there is none. */
function takeTokenFromFragment() {
  const match = /^#token=([^&]*)/.exec(location.hash);
  if (!match) return '';
  history.replaceState(null, '', `${location.pathname}${location.search}#/endpoints`);
  try {
    return decodeURIComponent(match[1]);
  } catch {
    return '';
  }
}

/** Signs in with a portal link's token. A link must not silently replace a session this
 * tab already has (it could sign you in to someone else's organisation): ask first. */
async function openPortalLink(token) {
  const held = storedKey();
  if (token && held && held !== token) {
    // The question is a view of its own: if another link is opened before this answer
    // arrives (a dialog's close event comes a task later), the answer is stale and must
    // not act, or its route() would close the newer question.
    const ctx = newView();
    const now = session.org ? `You are signed in to ${session.org} as ${session.role}. ` : 'This tab is signed in with another key. ';
    const ok = await confirmDialog({
      title: 'Open this portal link?',
      body: [h('p', null, now, 'The link signs in with a different key and replaces this session.')],
      confirmLabel: 'Use the link',
    });
    if (!ctx.alive()) return;
    if (!ok) {
      if (session.org) route('Kept your current session.');
      else resume(false);
      return;
    }
  }
  if (token) storeKey(token);
  resume(Boolean(token));
}

function showSignIn(message) {
  const ctx = newView();
  session.org = null;
  session.role = null;
  session.api = null;
  renderHeader();
  const inputId = uid('api-key');
  const hintId = uid('api-key-hint');
  const input = h('input', {
    id: inputId,
    name: 'api-key',
    type: 'password',
    autocomplete: 'off',
    spellcheck: 'false',
    required: true,
    'aria-describedby': hintId,
    'data-autofocus': '',
  });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h(
    'form',
    { class: 'signin', novalidate: true },
    h('label', { for: inputId }, 'API key'),
    input,
    h('p', { id: hintId, class: 'hint' }, 'An admin or member key of your organisation. It is kept in this browser tab only, until you sign out or close the tab.'),
    submit,
  );
  form.addEventListener(
    'submit',
    action(submit, async () => {
      const key = input.value.trim();
      if (!key) {
        input.setAttribute('aria-invalid', 'true');
        announce('Enter an API key.', 'error');
        input.focus();
        return;
      }
      let info;
      try {
        info = await getKeyInfo(key);
      } catch (error) {
        if (!ctx.alive()) return;
        input.setAttribute('aria-invalid', 'true');
        announce(error.status === 401 ? 'That key was refused: it is unknown, expired or revoked.' : errorText(error), 'error');
        input.focus();
        return;
      }
      if (!ctx.alive()) return;
      if (!acceptRole(info)) {
        input.setAttribute('aria-invalid', 'true');
        input.focus();
        return;
      }
      storeKey(key);
      input.value = '';
      enter(info);
    }),
  );
  show('Sign in', h('h1', null, 'Sign in'), form);
  if (message) announce(message.text, message.kind);
  else clearStatus();
}

function acceptRole(info) {
  if (info && (info.role === 'admin' || info.role === 'member') && typeof info.org === 'string') return true;
  announce(
    info && info.role === 'publisher'
      ? 'This key has the publisher role, which may only publish events. The console needs an admin or member key.'
      : 'The API did not describe this key.',
    'error',
  );
  return false;
}

function enter(info) {
  session.org = info.org;
  session.role = info.role;
  session.api = orgApi(info.org);
  renderHeader();
  route(`Signed in to ${info.org} as ${info.role}.`);
}

function signOut(text, kind = 'info') {
  forgetKey();
  freshSecret = null;
  history.replaceState(null, '', `${location.pathname}${location.search}`);
  showSignIn({ text, kind });
}

/** Checks the stored key and enters, or falls back to sign-in with the reason. */
async function resume(fromLink) {
  const key = storedKey();
  if (!key) return showSignIn();
  const ctx = newView();
  replace(viewEl, h('p', { 'aria-busy': 'true' }, 'Signing in…'));
  let info;
  try {
    info = await getKeyInfo(key);
  } catch (error) {
    if (!ctx.alive()) return;
    forgetKey();
    if (error.status === 401) {
      return showSignIn({
        text: fromLink
          ? 'This portal link was refused: it is unknown, expired or revoked. Ask for a new link, or sign in with an API key.'
          : 'Your session has ended: the key is unknown, expired or revoked. Sign in again.',
        kind: 'error',
      });
    }
    return showSignIn({ text: errorText(error), kind: 'error' });
  }
  if (!ctx.alive()) return;
  if (!acceptRole(info)) {
    const text = statusEl.textContent;
    forgetKey();
    return showSignIn({ text, kind: 'error' });
  }
  enter(info);
}

// ---------------------------------------------------------------- routing

function route(message) {
  if (/^#token=/.test(location.hash)) {
    openPortalLink(takeTokenFromFragment());
    return;
  }
  if (!session.org) {
    if (storedKey()) resume(false);
    else showSignIn();
    return;
  }
  const ctx = newView();
  const text = message || pendingAnnouncement;
  pendingAnnouncement = null;
  if (text) announce(text);
  else clearStatus();
  let parts;
  try {
    parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  } catch {
    parts = ['?'];
  }
  for (const link of header.querySelectorAll('[data-nav]')) {
    if (parts.length <= 1 && (parts[0] || 'endpoints') === link.dataset.nav) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  const [kind, id, sub] = parts;
  if (!kind || (kind === 'endpoints' && !id)) return endpointList(ctx);
  if (kind === 'endpoints' && id === 'new' && !sub && isAdmin()) return endpointForm(ctx, null);
  if (kind === 'endpoints' && isUuid(id) && !sub) return endpointPage(ctx, id);
  if (kind === 'endpoints' && isUuid(id) && sub === 'edit' && isAdmin()) return endpointForm(ctx, id);
  if (kind === 'deliveries' && isUuid(id) && !sub) return deliveryPage(ctx, id);
  return show('Not found', h('h1', null, 'Not found'), h('p', null, 'There is no such page. ', h('a', { href: '#/endpoints' }, 'Go to the endpoints.')));
}

// ---------------------------------------------------------------- small renderers

function badge(status) {
  const known = STATUSES.includes(status) ? status : 'other';
  return h('span', { class: `badge ${known}` }, String(status));
}

/** What paused an endpoint (`paused_reason`), in words. */
const PAUSED_BY = {
  manual: 'by an admin',
  circuit_breaker: 'by the circuit breaker: too many consecutive failures',
  gone: 'by the service: the receiver answered 410 Gone',
};

function activeBadge(endpoint) {
  if (endpoint.is_active) return h('span', { class: 'badge active' }, 'Active');
  const reason = Object.hasOwn(PAUSED_BY, endpoint.paused_reason) ? PAUSED_BY[endpoint.paused_reason] : null;
  return h('span', null, h('span', { class: 'badge paused' }, 'Paused'), reason ? h('span', { class: 'reason' }, ` ${reason}`) : null);
}

function eventTypeList(types) {
  return h('ul', { class: 'tags' }, (Array.isArray(types) ? types : []).map((t) => h('li', null, String(t))));
}

function describe(pairs) {
  return h('dl', { class: 'facts' }, pairs.filter(Boolean).map(([term, value]) => [h('dt', null, term), h('dd', null, value)]));
}

function loading(text) {
  return h('p', { class: 'loading', 'aria-busy': 'true' }, text);
}

function failure(error, retry) {
  return h('div', { class: 'failure' }, h('p', { class: 'error-text' }, errorText(error)), retry ? btn('Try again', { on: { click: retry } }) : null);
}

async function findEndpoint(id) {
  const { endpoints } = await session.api.listEndpoints();
  return (endpoints || []).find((e) => e.id === id) || null;
}

async function setActive(endpoint, active) {
  await session.api.updateEndpoint(endpoint.id, { is_active: active });
  return active ? 'Endpoint resumed: its failure count is reset and paused deliveries are queued again.' : 'Endpoint paused: new deliveries are held until it is resumed.';
}

async function confirmDelete(endpoint) {
  const ok = await confirmDialog({
    title: 'Delete this endpoint?',
    body: [h('p', null, 'The endpoint ', h('code', { class: 'wrap' }, endpoint.url), ' and its whole delivery history will be deleted. This cannot be undone.')],
    confirmLabel: 'Delete endpoint',
    danger: true,
  });
  if (!ok) return false;
  await session.api.deleteEndpoint(endpoint.id);
  return true;
}

// ---------------------------------------------------------------- endpoint list

function endpointList(ctx) {
  const body = h('div', null, loading('Loading endpoints…'));
  const refresh = btn('Refresh', { class: 'secondary' });
  const toolbar = h(
    'div',
    { class: 'actions' },
    isAdmin() ? h('a', { href: '#/endpoints/new', class: 'button primary' }, 'Create endpoint') : null,
    refresh,
  );
  show('Endpoints', h('h1', null, 'Endpoints'), toolbar, body);
  const begin = ctx.latest();

  async function load() {
    const isLatest = begin();
    let endpoints;
    try {
      ({ endpoints } = await session.api.listEndpoints());
    } catch (error) {
      if (isLatest()) replace(body, failure(error, load));
      return;
    }
    if (!isLatest()) return;
    if (!endpoints || endpoints.length === 0) {
      replace(body, h('p', null, isAdmin() ? 'No endpoints yet: create one to start receiving events.' : 'No endpoints yet.'));
      return;
    }
    const rows = endpoints.map((e) => {
      const cells = [
        h('td', { class: 'wrap' }, routeLink('endpoints', e.id, e.url)),
        h('td', { class: 'wrap' }, e.description || h('span', { class: 'muted' }, '—')),
        h('td', null, eventTypeList(e.event_types)),
        h('td', null, activeBadge(e)),
        h('td', { class: 'num' }, String(e.consecutive_failures)),
      ];
      if (isAdmin()) {
        const toggle = btn(e.is_active ? 'Pause' : 'Resume', { class: 'secondary', 'aria-label': `${e.is_active ? 'Pause' : 'Resume'} ${e.url}` });
        toggle.addEventListener(
          'click',
          action(toggle, async () => {
            const text = await setActive(e, !e.is_active);
            if (!ctx.alive()) return;
            announce(text);
            await load();
          }),
        );
        const del = btn('Delete', { class: 'danger', 'aria-label': `Delete ${e.url}` });
        del.addEventListener(
          'click',
          action(del, async () => {
            if ((await confirmDelete(e)) && ctx.alive()) {
              announce('Endpoint deleted.');
              await load();
            }
          }),
        );
        cells.push(h('td', null, h('div', { class: 'row-actions' }, toggle, del)));
      }
      return h('tr', { 'data-endpoint-id': e.id }, cells);
    });
    const heads = ['URL', 'Description', 'Event types', 'Status', 'Consecutive failures'];
    if (isAdmin()) heads.push('Actions');
    replace(
      body,
      h(
        'table',
        { class: 'list' },
        h('caption', null, `${endpoints.length} endpoint${endpoints.length === 1 ? '' : 's'} of ${session.org}`),
        h('thead', null, h('tr', null, heads.map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', null, rows),
      ),
    );
  }
  refresh.addEventListener('click', action(refresh, load));
  load();
}

// ---------------------------------------------------------------- create / edit form

function parseEventTypes(text) {
  return text
    .split(/[\s,]+/)
    .map((t) => t.trim())
    .filter(Boolean);
}

function endpointForm(ctx, id) {
  const editing = id !== null;
  const title = editing ? 'Edit endpoint' : 'Create endpoint';
  const fields = {
    url: { label: 'URL', hint: 'An https:// address that receives the events.', attrs: { type: 'url', inputmode: 'url', autocomplete: 'url', required: true } },
    description: { label: 'Description (optional)', hint: 'Up to 256 characters.', attrs: { type: 'text', maxlength: 256 } },
    event_types: { label: 'Event types', hint: 'One or more, separated by commas or spaces, for example alert.fired, order.created.', attrs: { type: 'text', required: true, spellcheck: 'false' } },
  };
  const inputs = {};
  const errors = {};
  const groups = Object.entries(fields).map(([name, f]) => {
    const inputId = uid(`field-${name}`);
    const hintId = uid('hint');
    const errId = uid('err');
    inputs[name] = h('input', { id: inputId, name, ...f.attrs, 'aria-describedby': `${hintId} ${errId}` });
    errors[name] = h('p', { id: errId, class: 'field-error' });
    return h('div', { class: 'field' }, h('label', { for: inputId }, f.label), inputs[name], h('p', { id: hintId, class: 'hint' }, f.hint), errors[name]);
  });
  const submit = h('button', { type: 'submit', class: 'primary' }, editing ? 'Save changes' : 'Create endpoint');
  const cancel = h('a', { href: editing ? `#/endpoints/${id}` : '#/endpoints', class: 'button secondary' }, 'Cancel');
  const form = h('form', { class: 'endpoint-form', novalidate: true }, groups, h('div', { class: 'actions' }, submit, cancel));
  const back = h('p', null, h('a', { href: editing ? `#/endpoints/${id}` : '#/endpoints' }, editing ? '← Back to the endpoint' : '← All endpoints'));
  const holder = h('div', null, editing ? loading('Loading the endpoint…') : form);
  show(title, back, h('h1', null, title), holder);

  let original = null;
  if (editing) {
    findEndpoint(id).then(
      (endpoint) => {
        if (!ctx.alive()) return;
        if (!endpoint) return replace(holder, h('p', null, 'This endpoint does not exist (it may have been deleted).'));
        original = endpoint;
        inputs.url.value = endpoint.url;
        inputs.description.value = endpoint.description || '';
        inputs.event_types.value = (endpoint.event_types || []).join(', ');
        replace(holder, form);
        inputs.url.focus();
      },
      (error) => ctx.alive() && replace(holder, failure(error)),
    );
  }

  function clearErrors() {
    for (const name of Object.keys(fields)) {
      inputs[name].removeAttribute('aria-invalid');
      errors[name].textContent = '';
    }
  }

  function fieldError(field, message) {
    const name = Object.keys(fields).find((n) => field === n || (field && field.startsWith(`${n}[`)));
    if (!name) return false;
    inputs[name].setAttribute('aria-invalid', 'true');
    errors[name].textContent = message;
    inputs[name].focus();
    return true;
  }

  form.addEventListener(
    'submit',
    action(submit, async () => {
      clearErrors();
      const values = {
        url: inputs.url.value.trim(),
        description: inputs.description.value,
        event_types: parseEventTypes(inputs.event_types.value),
      };
      if (!values.url) return void (fieldError('url', 'Enter the URL.'), announce('Enter the URL.', 'error'));
      if (values.event_types.length === 0) return void (fieldError('event_types', 'Enter at least one event type.'), announce('Enter at least one event type.', 'error'));
      try {
        if (!editing) {
          const created = await session.api.createEndpoint(values);
          // Even if the user moved on: the secret is shown once, on the new endpoint's page.
          freshSecret = { endpointId: created.id, secret: created.secret };
          navigate(`#/endpoints/${created.id}`, 'Endpoint created. Copy its signing secret now: it is shown only once.');
          return;
        }
        const change = {};
        if (values.url !== original.url) change.url = values.url;
        if (values.description !== (original.description || '')) change.description = values.description;
        if (values.event_types.join('\n') !== (original.event_types || []).join('\n')) change.event_types = values.event_types;
        if (Object.keys(change).length) await session.api.updateEndpoint(id, change);
        if (!ctx.alive()) return;
        navigate(`#/endpoints/${id}`, Object.keys(change).length ? 'Endpoint saved.' : 'Nothing changed.');
      } catch (error) {
        if (!ctx.alive()) return;
        fieldError(error.field, errorText(error));
        announce(errorText(error), 'error');
      }
    }),
  );
}

// ---------------------------------------------------------------- secret panel

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

// ---------------------------------------------------------------- endpoint page

function endpointPage(ctx, id) {
  const secret = freshSecret && freshSecret.endpointId === id ? freshSecret.secret : null;
  freshSecret = null;
  const secretHolder = h('div', null, secret ? secretPanel(secret, 'Signing secret') : null);
  const facts = h('div', null, loading('Loading the endpoint…'));
  const actions = h('div', { class: 'actions' });
  const recoveryHolder = h('div');
  const chartHolder = h('div', { class: 'chart-holder' });
  const logHolder = h('div');
  const chartTitle = uid('chart-title');
  const logTitle = uid('log-title');
  let endpoint = null;
  let chartWindow = '24h';

  const w24 = btn('24 hours', { class: 'toggle', 'aria-pressed': 'true' });
  const w7 = btn('7 days', { class: 'toggle', 'aria-pressed': 'false' });
  for (const [b, w] of [
    [w24, '24h'],
    [w7, '7d'],
  ]) {
    b.addEventListener('click', () => {
      chartWindow = w;
      w24.setAttribute('aria-pressed', String(w === '24h'));
      w7.setAttribute('aria-pressed', String(w === '7d'));
      loadChart();
    });
  }

  show(
    'Endpoint',
    h('p', null, h('a', { href: '#/endpoints' }, '← All endpoints')),
    h('h1', null, 'Endpoint'),
    secretHolder,
    facts,
    actions,
    recoveryHolder,
    h(
      'section',
      { 'aria-labelledby': chartTitle },
      h('h2', { id: chartTitle }, 'Attempts per hour'),
      h('div', { class: 'actions', role: 'group', 'aria-label': 'Chart period' }, w24, w7),
      chartHolder,
    ),
    h('section', { 'aria-labelledby': logTitle }, h('h2', { id: logTitle }, 'Deliveries'), logHolder),
  );

  const beginEndpoint = ctx.latest();
  async function loadEndpoint() {
    const isLatest = beginEndpoint();
    let found;
    try {
      found = await findEndpoint(id);
    } catch (error) {
      if (isLatest()) replace(facts, failure(error, loadEndpoint));
      return;
    }
    if (!isLatest()) return;
    endpoint = found;
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
      action(test, async () => {
        const sent = await session.api.sendTest(id);
        if (!ctx.alive()) return;
        announce(`Test event sent: delivery ${sent.delivery_id} is queued.`);
        await log.reset();
      }),
    );
    const edit = h('a', { href: `#/endpoints/${id}/edit`, class: 'button secondary' }, 'Edit');
    const toggle = btn(endpoint.is_active ? 'Pause' : 'Resume', { class: 'secondary' });
    toggle.addEventListener(
      'click',
      action(toggle, async () => {
        const text = await setActive(endpoint, !endpoint.is_active);
        if (!ctx.alive()) return;
        announce(text);
        await loadEndpoint();
        await log.reload();
      }),
    );
    const rotate = btn('Rotate secret', { class: 'secondary' });
    rotate.addEventListener(
      'click',
      action(rotate, async () => {
        const ok = await confirmDialog({
          title: 'Rotate the signing secret?',
          body: [h('p', null, 'A new secret replaces the current one at once: attempts made from now on are signed with the new secret only. Update your receiver right away.')],
          confirmLabel: 'Rotate secret',
        });
        if (!ok) return;
        const rotated = await session.api.rotateSecret(id);
        if (!ctx.alive()) return;
        replace(secretHolder, secretPanel(rotated.secret, 'New signing secret'));
        announce('Secret rotated. Copy the new secret now: it is shown only once.');
        secretHolder.querySelector('h2')?.setAttribute('tabindex', '-1');
        secretHolder.querySelector('h2')?.focus();
      }),
    );
    const recover = btn('Recover failed deliveries', { class: 'secondary' });
    recover.addEventListener('click', () => recoverDialog());
    const del = btn('Delete', { class: 'danger' });
    del.addEventListener(
      'click',
      action(del, async () => {
        if ((await confirmDelete(endpoint)) && ctx.alive()) navigate('#/endpoints', 'Endpoint deleted.');
      }),
    );
    replace(actions, test, edit, toggle, rotate, recover, del);
  }

  const beginChart = ctx.latest();
  async function loadChart() {
    const isLatest = beginChart();
    const label = chartWindow === '24h' ? '24 hours' : '7 days';
    chartHolder.setAttribute('aria-busy', 'true');
    try {
      const stats = await session.api.stats(id, chartWindow);
      if (isLatest()) replace(chartHolder, attemptsChart(stats, label));
    } catch (error) {
      if (isLatest()) replace(chartHolder, h('p', { class: 'error-text' }, `The chart could not be loaded: ${errorText(error)}`));
    } finally {
      if (isLatest()) chartHolder.removeAttribute('aria-busy');
    }
  }

  function recoverDialog() {
    const sinceId = uid('since');
    const untilId = uid('until');
    const since = h('input', { id: sinceId, type: 'datetime-local', required: true, step: 60, value: localInputValue(new Date(Date.now() - 24 * 3600 * 1000)) });
    const until = h('input', { id: untilId, type: 'datetime-local', step: 60 });
    const result = h('p', { class: 'dry-run', role: 'status', 'data-testid': 'dry-run' }, 'Check how many failed deliveries would be sent again.');
    const check = btn('Check', { class: 'secondary' });
    const start = btn('Recover', { class: 'primary', disabled: true });
    const cancel = btn('Cancel', { class: 'secondary' });
    let range = null;
    const { close } = openDialog('Recover failed deliveries', (closeDialog) => {
      cancel.addEventListener('click', closeDialog);
      return [
        h('p', null, 'Sends every failed delivery of this endpoint created in the period again, as a manual attempt.'),
        h('div', { class: 'field' }, h('label', { for: sinceId }, 'Since (your local time)'), since),
        h('div', { class: 'field' }, h('label', { for: untilId }, 'Until (optional, your local time)'), until),
        result,
        h('div', { class: 'actions' }, check, start, cancel),
      ];
    });
    since.focus();
    const invalidate = () => {
      range = null;
      start.disabled = true;
      start.textContent = 'Recover';
    };
    since.addEventListener('input', invalidate);
    until.addEventListener('input', invalidate);
    check.addEventListener(
      'click',
      action(check, async () => {
        invalidate();
        const body = rangeBody(since.value, until.value);
        if (typeof body === 'string') {
          result.textContent = body;
          return;
        }
        result.textContent = 'Counting…';
        let answer;
        try {
          answer = await session.api.recover(id, { ...body, dry_run: true });
        } catch (error) {
          result.textContent = errorText(error);
          return;
        }
        const n = Number(answer.count) || 0;
        result.textContent = n === 0 ? 'No failed deliveries in this period: nothing to recover.' : `${n} failed deliver${n === 1 ? 'y' : 'ies'} will be sent again.`;
        if (n > 0) {
          range = body;
          start.disabled = false;
          start.textContent = `Recover ${n} deliver${n === 1 ? 'y' : 'ies'}`;
          start.focus();
        }
      }),
    );
    start.addEventListener(
      'click',
      action(start, async () => {
        if (!range) return;
        let started;
        try {
          started = await session.api.recover(id, range);
        } catch (error) {
          result.textContent = errorText(error);
          return;
        }
        close();
        if (ctx.alive()) followRecovery(started.recovery_id);
      }),
    );
  }

  function followRecovery(recoveryId) {
    const progress = h('p', { 'data-testid': 'recovery-progress' }, 'Recovery started…');
    const titleId = uid('recovery-title');
    replace(recoveryHolder, h('section', { class: 'panel', 'aria-labelledby': titleId }, h('h2', { id: titleId }, 'Recovery'), progress));
    announce('Recovery started.');
    const poll = async () => {
      let r;
      try {
        r = await session.api.recovery(recoveryId);
      } catch (error) {
        if (ctx.alive()) progress.textContent = `The recovery's progress could not be read: ${errorText(error)}`;
        return;
      }
      if (!ctx.alive()) return;
      const n = Number(r.queued) || 0;
      if (r.status === 'done') {
        progress.textContent = `Recovery done: ${n} deliver${n === 1 ? 'y' : 'ies'} queued again.`;
        announce(`Recovery done: ${n} deliver${n === 1 ? 'y' : 'ies'} queued again.`);
        await log.reload();
        loadChart();
      } else {
        progress.textContent = `Recovery running: ${n} deliver${n === 1 ? 'y' : 'ies'} queued so far…`;
        // Every second at first, then every 10 s: a long recovery is not polled hard.
        polls += 1;
        ctx.later(poll, polls < 30 ? RECOVERY_POLL_MS : 10 * RECOVERY_POLL_MS);
      }
    };
    let polls = 0;
    poll();
  }

  const log = deliveryLog(ctx, id, logHolder, () => loadChart());
  loadEndpoint();
  loadChart();
  log.reset();
}

function localInputValue(date) {
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** `{since, until?}` in RFC 3339 from datetime-local values, or an error text. */
function rangeBody(sinceValue, untilValue) {
  const since = new Date(sinceValue);
  if (!sinceValue || Number.isNaN(since.getTime())) return 'Enter the start of the period ("Since").';
  const body = { since: since.toISOString() };
  if (untilValue) {
    const until = new Date(untilValue);
    if (Number.isNaN(until.getTime())) return 'The end of the period ("Until") is not a valid time.';
    if (until <= since) return '"Until" must be later than "Since".';
    body.until = until.toISOString();
  }
  return body;
}

// ---------------------------------------------------------------- delivery log

/**
 * An endpoint's deliveries through the organisation search (`endpoint_id` plus the
 * filters), newest first, a page at a time. While any shown delivery is pending or
 * retrying it refreshes itself every 2 s; `settled` runs when that stops.
 */
function deliveryLog(ctx, endpointId, holder, settled) {
  const statusId = uid('filter-status');
  const typeId = uid('filter-type');
  const statusSelect = h('select', { id: statusId }, h('option', { value: '' }, 'All statuses'), STATUSES.map((s) => h('option', { value: s }, s)));
  const typeSelect = h('select', { id: typeId }, h('option', { value: '' }, 'All event types'));
  const filters = h(
    'form',
    { class: 'filters', 'aria-label': 'Filter deliveries' },
    h('div', { class: 'field' }, h('label', { for: statusId }, 'Status'), statusSelect),
    h('div', { class: 'field' }, h('label', { for: typeId }, 'Event type'), typeSelect),
  );
  const table = h('div', null, loading('Loading deliveries…'));
  const newer = btn('Newer', { class: 'secondary' });
  const older = btn('Older', { class: 'secondary' });
  const refresh = btn('Refresh', { class: 'secondary' });
  const live = h('p', { class: 'hint', 'data-testid': 'log-live' });
  const pager = h('div', { class: 'actions pager' }, newer, older, refresh, live);
  replace(holder, filters, table, pager);

  // cursors[i] is the cursor of page i (null for the newest page).
  let cursors = [null];
  let page = 0;
  let nextCursor = null;
  let timer = null;
  let polling = false;
  const begin = ctx.latest();

  async function load() {
    ctx.cancel(timer);
    timer = null;
    const isLatest = begin();
    let answer;
    try {
      answer = await session.api.searchDeliveries({
        endpoint_id: endpointId,
        status: statusSelect.value,
        event_type: typeSelect.value,
        limit: PAGE_SIZE,
        cursor: cursors[page],
      });
    } catch (error) {
      if (isLatest()) {
        replace(table, failure(error, () => load()));
        live.textContent = '';
        polling = false;
      }
      return;
    }
    if (!isLatest()) return;
    const deliveries = Array.isArray(answer.deliveries) ? answer.deliveries : [];
    nextCursor = answer.next_cursor || null;
    renderRows(deliveries);
    newer.disabled = page === 0;
    older.disabled = !nextCursor;
    const active = deliveries.some((d) => NON_FINAL.has(d.status));
    if (active) {
      live.textContent = 'Updating every 2 seconds while deliveries are in progress.';
      timer = ctx.later(load, POLL_MS);
      polling = true;
    } else {
      live.textContent = '';
      if (polling && settled) settled();
      polling = false;
    }
  }

  function renderRows(deliveries) {
    if (deliveries.length === 0) {
      replace(table, h('p', null, page === 0 ? 'No deliveries match.' : 'No deliveries on this page: try "Older".'));
      return;
    }
    replace(
      table,
      h(
        'table',
        { class: 'list', 'data-testid': 'deliveries' },
        h('caption', null, `Deliveries, newest first (page ${page + 1})`),
        h(
          'thead',
          null,
          h(
            'tr',
            null,
            ['Event type', 'Created', 'Status', 'Attempts', 'Last HTTP status', 'Next attempt'].map((t) => h('th', { scope: 'col' }, t)),
          ),
        ),
        h(
          'tbody',
          null,
          deliveries.map((d) =>
            h(
              'tr',
              { 'data-delivery-id': d.id },
              h('th', { scope: 'row', class: 'wrap' }, routeLink('deliveries', d.id, String(d.event_type)), h('span', { class: 'sub' }, `Event ${d.event_id}`)),
              h('td', null, time(d.created_at)),
              h('td', null, badge(d.status)),
              h('td', { class: 'num' }, String(d.attempt_count)),
              h('td', { class: 'num' }, d.last_status_code === null || d.last_status_code === undefined ? '—' : String(d.last_status_code)),
              h('td', null, d.next_attempt_at ? time(d.next_attempt_at) : '—'),
            ),
          ),
        ),
      ),
    );
  }

  function reset() {
    cursors = [null];
    page = 0;
    return load();
  }

  const change = () => void reset();
  statusSelect.addEventListener('change', change);
  typeSelect.addEventListener('change', change);
  filters.addEventListener('submit', (e) => {
    e.preventDefault();
    change();
  });
  newer.addEventListener('click', () => {
    if (page > 0) {
      page -= 1;
      load();
    }
  });
  older.addEventListener('click', () => {
    if (nextCursor) {
      cursors[page + 1] = nextCursor;
      cursors.length = page + 2;
      page += 1;
      load();
    }
  });
  refresh.addEventListener('click', action(refresh, load));
  newer.disabled = true;
  older.disabled = true;

  return {
    reset,
    reload: load,
    setEventTypes(types) {
      const chosen = typeSelect.value;
      const all = [...new Set([...(types || []), 'webhook.test'])];
      replace(typeSelect, h('option', { value: '' }, 'All event types'), all.map((t) => h('option', { value: t }, t)));
      typeSelect.value = all.includes(chosen) ? chosen : '';
    },
  };
}

// ---------------------------------------------------------------- delivery detail

function deliveryPage(ctx, id) {
  const back = h('p', null, h('a', { href: '#/endpoints' }, '← All endpoints'));
  const facts = h('div', null, loading('Loading the delivery…'));
  const actions = h('div', { class: 'actions' });
  const attemptsHolder = h('div');
  const payloadHolder = h('div');
  const live = h('p', { class: 'hint', 'data-testid': 'detail-live' });
  const attemptsTitle = uid('attempts-title');
  const payloadTitle = uid('payload-title');
  let expectAttempts = 0;
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
      action(retry, async () => {
        const before = currentAttempts;
        await session.api.retryDelivery(id);
        if (!ctx.alive()) return;
        announce('Retry queued: a manual attempt is being made.');
        expectAttempts = before + 1;
        polls = 0;
        await load();
      }),
    );
    replace(actions, retry);
  }

  let currentAttempts = 0;
  let timer = null;
  const begin = ctx.latest();

  async function load() {
    ctx.cancel(timer);
    timer = null;
    const isLatest = begin();
    let d;
    try {
      d = await session.api.getDelivery(id);
    } catch (error) {
      if (isLatest()) {
        replace(facts, failure(error, load));
        live.textContent = '';
      }
      return;
    }
    if (!isLatest()) return;
    const attempts = Array.isArray(d.attempts) ? d.attempts : [];
    currentAttempts = Math.max(attempts.length, Number(d.attempt_count) || 0);
    replace(back, routeLink('endpoints', d.endpoint_id, '← The endpoint'));
    replace(
      facts,
      describe([
        ['Event type', String(d.event_type)],
        ['Event ID', h('code', { class: 'wrap' }, String(d.event_id))],
        ['Status', badge(d.status)],
        ['Attempts', String(d.attempt_count)],
        ['Last HTTP status', d.last_status_code === null || d.last_status_code === undefined ? '—' : String(d.last_status_code)],
        ['Created', time(d.created_at)],
        ['Updated', time(d.updated_at)],
        ['Next attempt', d.next_attempt_at ? time(d.next_attempt_at) : '—'],
        ['Delivery ID', h('code', null, d.id)],
      ]),
    );
    replace(attemptsHolder, attemptsTable(attempts));
    replace(
      payloadHolder,
      d.payload === null || d.payload === undefined
        ? h('p', null, 'The event has expired from storage: its payload is no longer kept.')
        : h('pre', { class: 'payload', 'data-testid': 'payload' }, JSON.stringify(d.payload, null, 2)),
    );
    const waiting = NON_FINAL.has(d.status) || (expectAttempts > 0 && attempts.length < expectAttempts);
    if (waiting && polls < 60) {
      polls += 1;
      live.textContent = 'Updating every 2 seconds until this delivery settles.';
      timer = ctx.later(load, POLL_MS);
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

function attemptsTable(attempts) {
  if (attempts.length === 0) return h('p', null, 'No attempt yet.');
  return h(
    'table',
    { class: 'list attempts', 'data-testid': 'attempts' },
    h('caption', null, 'Every attempt, oldest first'),
    h(
      'thead',
      null,
      h('tr', null, ['#', 'Trigger', 'Started', 'Duration', 'HTTP status', 'Error', 'Response body'].map((t) => h('th', { scope: 'col' }, t))),
    ),
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
          h('td', { class: 'num' }, a.status_code === null || a.status_code === undefined ? '—' : String(a.status_code)),
          h('td', null, a.error ? [h('strong', null, String(a.error.kind)), h('span', { class: 'sub' }, String(a.error.message))] : '—'),
          h('td', null, a.response_body ? h('pre', { class: 'body' }, a.response_body) : h('span', { class: 'muted' }, a.attempt_number === attempts.length ? '(empty)' : '(not kept)')),
        ),
      ),
    ),
  );
}

// ---------------------------------------------------------------- start

window.addEventListener('unhandledrejection', (event) => {
  event.preventDefault();
  announce(errorText(event.reason), 'error');
});

setupLayout();
setUnauthorizedHandler(() => {
  if (session.org) signOut('Your session has ended: the key is unknown, expired or revoked. Sign in again.', 'error');
});
// A hashchange event is queued a task after the address changed. If the address has moved
// on since (a route() run in between already took a portal token and rewrote it), the
// event is stale: the address it reports was handled, and routing again would close the
// question that route() opened.
window.addEventListener('hashchange', (event) => {
  if (new URL(event.newURL).hash === location.hash) route();
});
if (/^#token=/.test(location.hash)) openPortalLink(takeTokenFromFragment());
else resume(false);
