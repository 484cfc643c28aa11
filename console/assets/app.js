// The AgentVista Webhooks console: a small single-page app over the public API. This
// module holds the layout, the header, the session (sign-in, portal links, sign-out) and
// the router on the URL fragment (#/endpoints, #/endpoints/<id>, #/deliveries/<id>);
// each screen is a module of its own, built on view.js. A portal link's #token=... is
// read first and removed at once.

import { h, replace, isUuid } from './dom.js';
import { forgetKey, getKeyInfo, setUnauthorizedHandler, storedKey, storeKey } from './api.js';
import { session, isAdmin, startSession, endSession, roleProblem } from './session.js';
import {
  APP_NAME,
  announce,
  clearStatus,
  errorText,
  isAbort,
  setRouter,
  show,
  startView,
  statusRegion,
  takeAnnouncement,
  viewRegion,
} from './view.js';
import { askToUsePortalLink, signInView } from './signin.js';
import { endpointList } from './endpoints.js';
import { endpointForm } from './endpoint-form.js';
import { endpointPage } from './endpoint.js';
import { deliveryPage } from './delivery.js';

// ---------------------------------------------------------------- layout and header

const main = document.getElementById('app');
const header = h('header', { class: 'site-header' });

function setupLayout() {
  document.body.insertBefore(header, main);
  replace(main, statusRegion, viewRegion);
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

// ---------------------------------------------------------------- session

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

/** Signs in with a portal link's token, asking first if it would replace the key this
 * tab holds. If another link is opened before the answer (a dialog's close event comes a
 * task later), the answer is stale and must not act, or its route() would close the
 * newer question. */
async function openPortalLink(token) {
  const held = storedKey();
  if (token && held && held !== token) {
    let ok;
    try {
      ok = await askToUsePortalLink(startView(), session);
    } catch (error) {
      if (isAbort(error)) return;
      throw error;
    }
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
  const view = startView();
  endSession();
  renderHeader();
  signInView(view, message, enter);
}

function enter(info) {
  startSession(info);
  renderHeader();
  route(`Signed in to ${info.org} as ${info.role}.`);
}

function signOut(text, kind = 'info') {
  forgetKey();
  session.freshSecret = null;
  history.replaceState(null, '', `${location.pathname}${location.search}`);
  showSignIn({ text, kind });
}

/** Checks the stored key and enters, or falls back to sign-in with the reason. */
async function resume(fromLink) {
  const key = storedKey();
  if (!key) return showSignIn();
  const view = startView();
  replace(viewRegion, h('p', { 'aria-busy': 'true' }, 'Signing in…'));
  let info;
  try {
    info = await getKeyInfo(key, { signal: view.signal });
  } catch (error) {
    if (isAbort(error)) return;
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
  const problem = roleProblem(info);
  if (problem) {
    forgetKey();
    return showSignIn({ text: problem, kind: 'error' });
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
  const view = startView();
  const pending = takeAnnouncement();
  const text = message || pending;
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
  if (!kind || (kind === 'endpoints' && !id)) return endpointList(view);
  if (kind === 'endpoints' && id === 'new' && !sub && isAdmin()) return endpointForm(view, null);
  if (kind === 'endpoints' && isUuid(id) && !sub) return endpointPage(view, id);
  if (kind === 'endpoints' && isUuid(id) && sub === 'edit' && isAdmin()) return endpointForm(view, id);
  if (kind === 'deliveries' && isUuid(id) && !sub) return deliveryPage(view, id);
  return show('Not found', h('h1', null, 'Not found'), h('p', null, 'There is no such page. ', h('a', { href: '#/endpoints' }, 'Go to the endpoints.')));
}

// ---------------------------------------------------------------- start

window.addEventListener('unhandledrejection', (event) => {
  event.preventDefault();
  // Cancelled work is no failure: never announced.
  if (!isAbort(event.reason)) announce(errorText(event.reason), 'error');
});

setupLayout();
setRouter(route);
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
