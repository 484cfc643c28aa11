// The organisation's endpoints (#/endpoints), and the pause/resume and delete actions the
// endpoint page offers too.

import { h, replace, routeLink } from './dom.js';
import { session, isAdmin } from './session.js';
import { activeBadge, eventTypeList, failure, loading } from './parts.js';
import { action, announce, btn, confirmDialog, isAbort, show } from './view.js';

/** The endpoint `id`, or null if the API does not know it (404: unknown, or another
 * organisation's). */
export async function findEndpoint(id, signal) {
  try {
    return await session.api.getEndpoint(id, { signal });
  } catch (error) {
    if (error.status === 404) return null;
    throw error;
  }
}

/** Pauses or resumes `endpoint`; resolves to the sentence that says what happened. */
export async function setActive(view, endpoint, active) {
  await view.settle(session.api.updateEndpoint(endpoint.id, { is_active: active }));
  return active ? 'Endpoint resumed: its failure count is reset and paused deliveries are queued again.' : 'Endpoint paused: new deliveries are held until it is resumed.';
}

/** Deletes `endpoint` once confirmed; resolves true if it was deleted. */
export async function confirmDelete(view, endpoint) {
  const ok = await confirmDialog(view, {
    title: 'Delete this endpoint?',
    body: [h('p', null, 'The endpoint ', h('code', { class: 'wrap' }, endpoint.url), ' and its whole delivery history will be deleted. This cannot be undone.')],
    confirmLabel: 'Delete endpoint',
    danger: true,
  });
  if (!ok) return false;
  await view.settle(session.api.deleteEndpoint(endpoint.id));
  return true;
}

export function endpointList(view) {
  const body = h('div', null, loading('Loading endpoints…'));
  const refresh = btn('Refresh', { class: 'secondary' });
  const toolbar = h(
    'div',
    { class: 'actions' },
    isAdmin() ? h('a', { href: '#/endpoints/new', class: 'button primary' }, 'Create endpoint') : null,
    refresh,
  );
  show('Endpoints', h('h1', null, 'Endpoints'), toolbar, body);
  const loader = view.loader();

  async function load() {
    const signal = loader.start();
    let endpoints;
    try {
      ({ endpoints } = await session.api.listEndpoints({ signal }));
    } catch (error) {
      if (!isAbort(error)) replace(body, failure(error, load));
      return;
    }
    if (!endpoints || endpoints.length === 0) {
      replace(body, h('p', null, isAdmin() ? 'No endpoints yet: create one to start receiving events.' : 'No endpoints yet.'));
      return;
    }
    const heads = ['URL', 'Description', 'Event types', 'Status', 'Consecutive failures'];
    if (isAdmin()) heads.push('Actions');
    replace(
      body,
      h(
        'table',
        { class: 'list' },
        h('caption', null, `${endpoints.length} endpoint${endpoints.length === 1 ? '' : 's'} of ${session.org}`),
        h('thead', null, h('tr', null, heads.map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', null, endpoints.map(row)),
      ),
    );
  }

  function row(e) {
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
        action(view, toggle, async () => {
          announce(await setActive(view, e, !e.is_active));
          await load();
        }),
      );
      const del = btn('Delete', { class: 'danger', 'aria-label': `Delete ${e.url}` });
      del.addEventListener(
        'click',
        action(view, del, async () => {
          if (await confirmDelete(view, e)) {
            announce('Endpoint deleted.');
            await load();
          }
        }),
      );
      cells.push(h('td', null, h('div', { class: 'row-actions' }, toggle, del)));
    }
    return h('tr', { 'data-endpoint-id': e.id }, cells);
  }

  refresh.addEventListener('click', action(view, refresh, load));
  load();
}
