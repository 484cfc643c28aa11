// Creating an endpoint (#/endpoints/new) and editing one (#/endpoints/<id>/edit).

import { h, replace, uid } from './dom.js';
import { session } from './session.js';
import { failure, loading } from './parts.js';
import { action, announce, errorText, isAbort, navigate, show } from './view.js';
import { findEndpoint } from './endpoints.js';

const FIELDS = {
  url: { label: 'URL', hint: 'An https:// address that receives the events.', attrs: { type: 'url', inputmode: 'url', autocomplete: 'url', required: true } },
  description: { label: 'Description (optional)', hint: 'Up to 256 characters.', attrs: { type: 'text', maxlength: 256 } },
  event_types: { label: 'Event types', hint: 'One or more, separated by commas or spaces, for example alert.fired, order.created.', attrs: { type: 'text', required: true, spellcheck: 'false' } },
};

function parseEventTypes(text) {
  return text
    .split(/[\s,]+/)
    .map((t) => t.trim())
    .filter(Boolean);
}

/** The form; `id` is the endpoint to edit, null to create one. */
export function endpointForm(view, id) {
  const editing = id !== null;
  const title = editing ? 'Edit endpoint' : 'Create endpoint';
  const inputs = {};
  const errors = {};
  const groups = Object.entries(FIELDS).map(([name, f]) => {
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
    findEndpoint(id, view.signal).then(
      (endpoint) => {
        if (!endpoint) return replace(holder, h('p', null, 'This endpoint does not exist (it may have been deleted).'));
        original = endpoint;
        inputs.url.value = endpoint.url;
        inputs.description.value = endpoint.description || '';
        inputs.event_types.value = (endpoint.event_types || []).join(', ');
        replace(holder, form);
        inputs.url.focus();
      },
      (error) => {
        if (!isAbort(error)) replace(holder, failure(error));
      },
    );
  }

  function clearErrors() {
    for (const name of Object.keys(FIELDS)) {
      inputs[name].removeAttribute('aria-invalid');
      errors[name].textContent = '';
    }
  }

  function fieldError(field, message) {
    const name = Object.keys(FIELDS).find((n) => field === n || (field && field.startsWith(`${n}[`)));
    if (!name) return false;
    inputs[name].setAttribute('aria-invalid', 'true');
    errors[name].textContent = message;
    inputs[name].focus();
    return true;
  }

  /** The fields that differ from the endpoint as loaded. */
  function changes(values) {
    const change = {};
    if (values.url !== original.url) change.url = values.url;
    if (values.description !== (original.description || '')) change.description = values.description;
    if (values.event_types.join('\n') !== (original.event_types || []).join('\n')) change.event_types = values.event_types;
    return change;
  }

  form.addEventListener(
    'submit',
    action(view, submit, async () => {
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
          // Not cancelled with the view: even if the user moved on, the new endpoint's
          // page opens, the only place its secret is ever shown.
          const created = await session.api.createEndpoint(values);
          session.freshSecret = { endpointId: created.id, secret: created.secret };
          navigate(`#/endpoints/${created.id}`, 'Endpoint created. Copy its signing secret now: it is shown only once.');
          return;
        }
        const change = changes(values);
        if (Object.keys(change).length) await view.settle(session.api.updateEndpoint(id, change));
        navigate(`#/endpoints/${id}`, Object.keys(change).length ? 'Endpoint saved.' : 'Nothing changed.');
      } catch (error) {
        // A stale answer (a create's failure can arrive after its view ended): dropped.
        if (isAbort(error) || view.signal.aborted) return;
        fieldError(error.field, errorText(error));
        announce(errorText(error), 'error');
      }
    }),
  );
}
