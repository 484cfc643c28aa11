// Who is signed in: the organisation and role of the stored key (from `GET /key`), and
// the API scoped to that organisation. app.js fills it in and clears it; views read it.

import { orgApi } from './api.js';

export const session = {
  org: null,
  role: null,
  api: null,
  /** A secret to show once, on the next render of its endpoint's page. */
  freshSecret: null,
};

export function isAdmin() {
  return session.role === 'admin';
}

export function startSession(info) {
  session.org = info.org;
  session.role = info.role;
  session.api = orgApi(info.org);
}

export function endSession() {
  session.org = null;
  session.role = null;
  session.api = null;
}

/** Why the console cannot use a key `GET /key` described as `info`, or null if it can. */
export function roleProblem(info) {
  if (info && (info.role === 'admin' || info.role === 'member') && typeof info.org === 'string') return null;
  return info && info.role === 'publisher'
    ? 'This key has the publisher role, which may only publish events. The console needs an admin or member key.'
    : 'The API did not describe this key.';
}
