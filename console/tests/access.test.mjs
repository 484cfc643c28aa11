// Who gets in and what they can do: portal links (member: read-only; unknown token:
// refused), the console framed by an allowed origin, text-only rendering of hostile
// strings, and the main flows by keyboard alone.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  ORG,
  cleanupDir,
  eventually,
  launchBrowser,
  makeCert,
  signIn,
  startHost,
  startReceiver,
  startServer,
  watchedPage,
  withPage,
} from './harness.mjs';

const XSS_IMG = '<img src=x onerror="window.__xss=1">';
const XSS_SCRIPT = '<script>window.__xss=1</script>';
const WRITE_BUTTONS = ['Create endpoint', 'Pause', 'Resume', 'Delete', 'Send test event', 'Edit', 'Rotate secret', 'Recover failed deliveries', 'Retry now'];

describe('console: access, framing, safety and keyboard', () => {
  let cert;
  let receiver;
  let server;
  let host;
  let browser;
  let endpoint;
  let deliveryId;

  const portal = async (role) => server.call('POST', `/org/${ORG}/webhooks/portal-sessions`, { role }, 201);

  async function assertNoWriteActions(page) {
    for (const name of WRITE_BUTTONS) {
      assert.equal(await page.getByRole('button', { name, exact: true }).count(), 0, `no "${name}" button`);
      assert.equal(await page.getByRole('link', { name, exact: true }).count(), 0, `no "${name}" link`);
    }
  }

  before(async () => {
    cert = makeCert();
    receiver = await startReceiver(cert);
    host = await startHost();
    server = await startServer({ cert, frameAncestors: host.origin });
    browser = await launchBrowser();
    endpoint = await server.call('POST', `/org/${ORG}/webhooks/endpoints`, { url: `${receiver.url}/orders`, description: 'Orders feed', event_types: ['order.created'] }, 201);
    const sent = await server.call('POST', `/org/${ORG}/webhooks/endpoints/${endpoint.id}/test`, undefined, 202);
    deliveryId = sent.delivery_id;
    await eventually(async () => {
      const d = await server.call('GET', `/org/${ORG}/webhooks/deliveries/${deliveryId}`, undefined, 200);
      assert.equal(d.status, 'succeeded');
    });
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    await receiver?.close();
    await host?.close();
    if (cert) cleanupDir(cert.dir);
  });

  it('signs in from a member portal link, read-only, and drops the token from the URL', async () => {
    const session = await portal('member');
    assert.ok(session.url.endsWith(`/console/#token=${session.token}`));
    await withPage(browser, async (page) => {
    await page.goto(session.url);
    await page.getByTestId('who').filter({ hasText: `Organisation ${ORG}, role member` }).waitFor();
    assert.ok(!page.url().includes('token'), page.url());
    assert.ok(!page.url().includes(session.token));
    assert.deepEqual(await page.evaluate(() => Object.values(sessionStorage)), [session.token]);
    await page.getByRole('link', { name: endpoint.url }).waitFor();
    await assertNoWriteActions(page);
    await page.getByRole('link', { name: endpoint.url }).click();
    await page.getByRole('link', { name: 'webhook.test' }).click();
    await page.getByTestId('attempts').getByText('200').waitFor();
    await assertNoWriteActions(page);
    // A write route typed by hand is not offered either.
    await page.evaluate(() => {
      location.hash = '#/endpoints/new';
    });
    await page.getByRole('heading', { name: 'Not found' }).waitFor();
    page.assertClean();
    });
  });

  it('asks before a portal link replaces the session the tab has', async () => {
    const session = await portal('member');
    await withPage(browser, async (page) => {
    // A link opened in a tab that shows the console is a hash change: goto returns
    // before the page has read it, so wait until the page has taken the token.
    const openLink = async (url) => {
      await page.goto(url);
      await page.waitForFunction(() => !location.hash.startsWith('#token='));
    };
    await signIn(page, server.base, server.key);
    await page.getByTestId('who').filter({ hasText: 'role admin' }).waitFor();
    // Kept: the link is dropped from the URL, the admin session stays.
    await openLink(session.url);
    const dialog = page.getByRole('dialog', { name: 'Open this portal link?' });
    await dialog.getByText(`You are signed in to ${ORG} as admin.`).waitFor();
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await page.getByTestId('who').filter({ hasText: 'role admin' }).waitFor();
    assert.ok(!page.url().includes('token'), page.url());
    assert.deepEqual(await page.evaluate(() => Object.values(sessionStorage)), [server.key]);
    // A second link opened while the question is shown replaces the question: one
    // dialog, about the latest link, and the first one's answer does not close it.
    const latest = await portal('member');
    await openLink(session.url);
    await dialog.waitFor();
    // The link's own hashchange event can come after another route() has already taken
    // the token (the event is queued a task later): a stale event leaves the question be.
    await page.evaluate((url) => window.dispatchEvent(new HashChangeEvent('hashchange', { oldURL: location.href, newURL: url })), session.url);
    await page.evaluate(() => new Promise((resolve) => setTimeout(resolve, 100)));
    assert.equal(await dialog.count(), 1);
    assert.ok(await dialog.isVisible());
    await openLink(latest.url);
    await eventually(async () => assert.equal(await page.getByRole('dialog').count(), 1));
    // Accepted: the latest link's member session replaces the admin one.
    await dialog.getByRole('button', { name: 'Use the link' }).click();
    await page.getByTestId('who').filter({ hasText: `Organisation ${ORG}, role member` }).waitFor();
    assert.deepEqual(await page.evaluate(() => Object.values(sessionStorage)), [latest.token]);
    page.assertClean();
    });
  });

  it('refuses an unknown portal token, back to sign-in with a message', async () => {
    await withPage(browser, async (page) => {
    page.allow(/status of 401/);
    await page.goto(`${server.base}/console/#token=avk_not_a_real_token_0000000000`);
    await page.getByTestId('status').filter({ hasText: 'This portal link was refused' }).waitFor();
    await page.getByLabel('API key').waitFor();
    assert.ok(!page.url().includes('token'));
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);
    page.assertClean();
    });
  });

  it('ends a session whose key stops working (401) back at sign-in', async () => {
    const session = await portal('admin');
    await withPage(browser, async (page) => {
    page.allow(/status of 401/);
    await page.goto(session.url);
    await page.getByRole('heading', { name: 'Endpoints', level: 1 }).waitFor();
    // The key is replaced by one the API does not know, as after a revocation.
    await page.evaluate(() => sessionStorage.setItem(Object.keys(sessionStorage)[0], 'avk_revoked_key_000000000000'));
    await page.getByRole('button', { name: 'Refresh' }).click();
    await page.getByTestId('status').filter({ hasText: 'Your session has ended' }).waitFor();
    await page.getByLabel('API key').waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);
    page.assertClean();
    });
  });

  it('works inside an iframe of an allowed origin', async () => {
    const session = await portal('member');
    host.set(`<!doctype html><html lang="en"><title>Host</title><h1>Host page</h1><iframe title="Webhooks console" src="${session.url}" width="1200" height="700"></iframe></html>`);
    await withPage(browser, async (page) => {
    await page.goto(`${host.origin}/`);
    const frame = page.frameLocator('iframe[title="Webhooks console"]');
    await frame.getByRole('heading', { name: 'Endpoints', level: 1 }).waitFor();
    await frame.getByRole('link', { name: endpoint.url }).waitFor();
    await frame.getByTestId('who').filter({ hasText: 'role member' }).waitFor();
    page.assertClean();
    });
  });

  it('renders hostile strings as text in the list, the log and the detail', async () => {
    receiver.answer(200, `${XSS_IMG}${XSS_SCRIPT}`);
    const hostile = await server.call(
      'POST',
      `/org/${ORG}/webhooks/endpoints`,
      { url: `${receiver.url}/xss?q=${encodeURIComponent('"><img src=x>')}`, description: `${XSS_IMG} ${XSS_SCRIPT}`, event_types: ['xss.probe'] },
      201,
    );
    const published = await server.call(
      'POST',
      `/org/${ORG}/webhooks/events`,
      { type: 'xss.probe', id: 'xss:probe-1', data: { img: XSS_IMG, script: XSS_SCRIPT, [XSS_IMG]: 'key', nested: [{ html: XSS_SCRIPT }] } },
      202,
    );
    assert.equal(published.deliveries, 1);
    const found = await eventually(async () => {
      const page1 = await server.call('GET', `/org/${ORG}/webhooks/deliveries?endpoint_id=${hostile.id}&status=succeeded`, undefined, 200);
      assert.equal(page1.deliveries.length, 1);
      return page1.deliveries[0];
    });

    const context = await browser.newContext({ bypassCSP: true });
    try {
      const page = await watchedPage(context);
      const assertInert = async () => {
        assert.equal(await page.evaluate(() => window.__xss), undefined);
        assert.equal(await page.locator('img[src="x"]').count(), 0);
        assert.equal(await page.locator('script:not([src])').count(), 0);
      };
      await signIn(page, server.base, server.key);
      const row = page.locator(`tr[data-endpoint-id="${hostile.id}"]`);
      await row.getByText(`${XSS_IMG} ${XSS_SCRIPT}`).waitFor();
      await assertInert();
      await row.getByRole('link').first().click();
      await page.getByText(`${XSS_IMG} ${XSS_SCRIPT}`).waitFor();
      await page.locator(`tr[data-delivery-id="${found.id}"]`).getByText('succeeded').waitFor();
      await assertInert();
      await page.getByRole('link', { name: 'xss.probe' }).click();
      const payload = page.getByTestId('payload');
      await payload.waitFor();
      const text = await payload.textContent();
      assert.ok(text.includes(JSON.stringify(XSS_IMG).slice(1, -1)), text);
      assert.ok(text.includes(XSS_SCRIPT), text);
      await page.getByTestId('attempts').getByText(`${XSS_IMG}${XSS_SCRIPT}`).waitFor();
      await assertInert();
      page.assertClean();
    } finally {
      await context.close();
      receiver.answer(200, 'ok');
    }
  });

  it('pages the delivery log and filters it by event type', async () => {
    for (let i = 0; i < 22; i += 1) {
      await server.call('POST', `/org/${ORG}/webhooks/events`, { type: 'order.created', id: `order-${i}`, data: { n: i } }, 202);
    }
    await eventually(async () => {
      const page1 = await server.call('GET', `/org/${ORG}/webhooks/deliveries?endpoint_id=${endpoint.id}&status=pending,retrying&limit=100`, undefined, 200);
      assert.equal(page1.deliveries.length, 0);
    });
    await withPage(browser, async (page) => {
    await signIn(page, server.base, server.key);
    await page.getByRole('link', { name: endpoint.url }).click();
    const rows = page.locator('[data-testid="deliveries"] tbody tr');
    await eventually(async () => assert.equal(await rows.count(), 20));
    const first = await rows.first().getAttribute('data-delivery-id');
    assert.ok(await page.getByRole('button', { name: 'Newer' }).isDisabled());
    await page.getByRole('button', { name: 'Older' }).click();
    await page.getByText('(page 2)').waitFor();
    assert.ok((await rows.count()) >= 1);
    assert.equal(await page.locator(`tr[data-delivery-id="${first}"]`).count(), 0);
    await page.getByRole('button', { name: 'Newer' }).click();
    await page.locator(`tr[data-delivery-id="${first}"]`).waitFor();
    await page.getByLabel('Event type', { exact: true }).selectOption('webhook.test');
    await page.locator(`tr[data-delivery-id="${deliveryId}"]`).waitFor();
    await eventually(async () => assert.equal(await rows.count(), 1));
    page.assertClean();
    });
  });

  it('can be used with the keyboard alone', async () => {
    await withPage(browser, async (page) => {
    const focused = () => page.evaluate(() => {
      const el = document.activeElement;
      return el ? `${el.tagName}:${(el.getAttribute('aria-label') || el.textContent || el.id || '').trim()}` : '';
    });
    const tabTo = async (label, { max = 40, exact = true } = {}) => {
      for (let i = 0; i < max; i += 1) {
        const now = await focused();
        const text = now.slice(now.indexOf(':') + 1);
        if (exact ? text === label : text.includes(label)) return;
        await page.keyboard.press('Tab');
      }
      assert.fail(`could not reach "${label}" with Tab (at ${await focused()})`);
    };

    await page.goto(`${server.base}/console/`);
    await page.getByLabel('API key').waitFor();
    // The key field has focus: type and press Enter.
    await page.keyboard.type(server.key);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Endpoints', level: 1 }).waitFor();

    await tabTo('Create endpoint');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Create endpoint', level: 1 }).waitFor();
    // Focus moved to the heading; the URL field comes next.
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.labels?.[0]?.textContent), 'URL');
    await page.keyboard.type(`${receiver.url}/keyboard`);
    await page.keyboard.press('Tab');
    await page.keyboard.type('Typed by keyboard');
    await page.keyboard.press('Tab');
    await page.keyboard.type('kb.done');
    await page.keyboard.press('Enter');
    await page.getByTestId('secret').waitFor();
    // The actions are drawn when the endpoint's details arrive, after the secret.
    await page.getByRole('button', { name: 'Send test event' }).waitFor();

    await tabTo('Send test event');
    await page.keyboard.press('Enter');
    await page.locator('[data-testid="deliveries"] tbody tr').getByText('succeeded').waitFor();
    await tabTo('webhook.test');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Delivery', level: 1 }).waitFor();
    await page.getByTestId('attempts').getByText('200').waitFor();

    // Back to the endpoint, then a dialog: Escape cancels and focus returns.
    await tabTo('← The endpoint');
    await page.keyboard.press('Enter');
    await page.getByTestId('endpoint-url').waitFor();
    await tabTo('Rotate secret');
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog', { name: 'Rotate the signing secret?' });
    await dialog.waitFor();
    assert.equal(await focused(), 'BUTTON:Cancel');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    assert.equal(await focused(), 'BUTTON:Rotate secret');
    assert.equal(await page.getByTestId('secret').count(), 0, 'the secret shown at creation is gone');

    // Again, confirming with Tab and Enter, once the button is ready again (it is
    // busy until the cancelled dialog's promise has settled).
    await page.locator('button[aria-busy]').waitFor({ state: 'detached' });
    assert.equal(await focused(), 'BUTTON:Rotate secret');
    await page.keyboard.press('Enter');
    await dialog.waitFor();
    await page.keyboard.press('Tab');
    assert.equal(await focused(), 'BUTTON:Rotate secret');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'New signing secret' }).waitFor();
    page.assertClean();
    });
  });
});
