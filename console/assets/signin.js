// Signing in: the API key form, and the question a portal link asks before it replaces
// the session this tab already has. What happens once a key is accepted (the session,
// the header, the first screen) is app.js's.

import { h, uid } from './dom.js';
import { getKeyInfo, storeKey } from './api.js';
import { roleProblem } from './session.js';
import { action, announce, clearStatus, confirmDialog, errorText, isAbort, show } from './view.js';

/** The sign-in form; `enter(info)` runs with `GET /key`'s answer once the key is kept. */
export function signInView(view, message, enter) {
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
  const refuse = (text) => {
    input.setAttribute('aria-invalid', 'true');
    announce(text, 'error');
    input.focus();
  };
  form.addEventListener(
    'submit',
    action(view, submit, async () => {
      const key = input.value.trim();
      if (!key) return refuse('Enter an API key.');
      let info;
      try {
        info = await getKeyInfo(key, { signal: view.signal });
      } catch (error) {
        if (isAbort(error)) throw error;
        return refuse(error.status === 401 ? 'That key was refused: it is unknown, expired or revoked.' : errorText(error));
      }
      const problem = roleProblem(info);
      if (problem) return refuse(problem);
      storeKey(key);
      input.value = '';
      enter(info);
    }),
  );
  show('Sign in', h('h1', null, 'Sign in'), form);
  if (message) announce(message.text, message.kind);
  else clearStatus();
}

/** Asks whether a portal link may replace the session `session` describes (a link must
 * not silently sign you in to someone else's organisation). The question is a view of its
 * own: resolves true to use the link, rejects with an AbortError if a newer view (another
 * link) took over before the answer. */
export function askToUsePortalLink(view, session) {
  const now = session.org ? `You are signed in to ${session.org} as ${session.role}. ` : 'This tab is signed in with another key. ';
  return confirmDialog(view, {
    title: 'Open this portal link?',
    body: [h('p', null, now, 'The link signs in with a different key and replaces this session.')],
    confirmLabel: 'Use the link',
  });
}
