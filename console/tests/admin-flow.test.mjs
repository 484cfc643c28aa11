// An admin's whole journey through the console, in order: sign in, create an endpoint,
// see its secret once, send a test event, read the attempt, retry it, watch the endpoint
// pause on failures, resume it, recover the failed deliveries, rotate the secret, read
// the chart, check accessibility, take screenshots, delete the endpoint.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
  ORG,
  assertAccessible,
  cleanupDir,
  eventually,
  launchBrowser,
  makeCert,
  screenshotDir,
  signIn,
  signatureValid,
  startReceiver,
  startServer,
  watchedPage,
} from './harness.mjs';

const RECEIVER_BODY = 'thanks from the receiver';

describe('console: an admin manages an endpoint', () => {
  let cert;
  let receiver;
  let server;
  let browser;
  let context;
  let page;
  let endpointId;
  let secret;
  let hookUrl;
  let failedDeliveryId;
  const shots = screenshotDir();

  const deliveriesTo = () => receiver.requests.filter((r) => r.url === '/hook');

  before(async () => {
    cert = makeCert();
    receiver = await startReceiver(cert);
    receiver.answer(200, RECEIVER_BODY);
    server = await startServer({ cert });
    browser = await launchBrowser();
    context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    page = await watchedPage(context);
    hookUrl = `${receiver.url}/hook`;
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    await receiver?.close();
    if (cert) cleanupDir(cert.dir);
  });

  it('signs in with an API key kept only in sessionStorage', async () => {
    await signIn(page, server.base, server.key);
    await page.getByTestId('who').filter({ hasText: `Organisation ${ORG}, role admin` }).waitFor();
    const stored = await page.evaluate(() => ({
      session: Object.values(sessionStorage),
      local: localStorage.length,
      cookie: document.cookie,
      url: location.href,
    }));
    assert.deepEqual(stored.session, [server.key]);
    assert.equal(stored.local, 0);
    assert.equal(stored.cookie, '');
    assert.ok(!stored.url.includes(server.key));
    page.assertClean();
  });

  it('creates an endpoint and shows its secret once', async () => {
    await page.getByRole('link', { name: 'Create endpoint' }).click();
    await page.getByLabel('URL').fill(hookUrl);
    await page.getByLabel('Description (optional)').fill('Order events');
    await page.getByLabel('Event types').fill('order.created, order.updated');
    await page.getByRole('button', { name: 'Create endpoint' }).click();
    await page.getByRole('heading', { name: 'Endpoint', level: 1 }).waitFor();
    secret = (await page.getByTestId('secret').textContent()).trim();
    assert.match(secret, /^whsec_[A-Za-z0-9+/]{43}=$/);
    endpointId = new URL(page.url()).hash.replace('#/endpoints/', '');
    assert.match(endpointId, /^[0-9a-f-]{36}$/);
    await page.getByTestId('status').filter({ hasText: 'Endpoint created' }).waitFor();
    await page.getByRole('button', { name: 'Copy secret' }).click();
    await page.getByTestId('status').filter({ hasText: /copied|selected/ }).waitFor();

    // Away and back: the secret is gone.
    await page.getByRole('link', { name: '← All endpoints' }).click();
    const row = page.locator(`tr[data-endpoint-id="${endpointId}"]`);
    await row.getByText('Order events').waitFor();
    await row.getByText('order.updated').waitFor();
    await row.getByText('Active').waitFor();
    await row.getByRole('link', { name: hookUrl }).click();
    await page.getByTestId('endpoint-url').filter({ hasText: hookUrl }).waitFor();
    assert.equal(await page.getByTestId('secret').count(), 0);
    assert.ok(!(await page.content()).includes(secret));
    page.assertClean();
  });

  it('edits the endpoint', async () => {
    await page.getByRole('link', { name: 'Edit' }).click();
    await page.getByRole('heading', { name: 'Edit endpoint', level: 1 }).waitFor();
    const description = page.getByLabel('Description (optional)');
    await eventually(async () => assert.equal(await description.inputValue(), 'Order events'));
    // A value the API refuses: its message is shown next to the field.
    page.allow(/status of 422/);
    await page.getByLabel('Event types').fill('Not A Type');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.getByLabel('Event types').and(page.locator('[aria-invalid="true"]')).waitFor();
    assert.ok((await page.getByTestId('status').textContent()).length > 0);
    await page.getByLabel('Event types').fill('order.created, order.updated');
    await description.fill('Order events (edited)');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.getByTestId('status').filter({ hasText: 'Endpoint saved.' }).waitFor();
    await page.getByText('Order events (edited)').waitFor();
    page.assertClean();
  });

  it('sends a test event, delivered and signed', async () => {
    await page.getByRole('button', { name: 'Send test event' }).click();
    await page.getByTestId('status').filter({ hasText: 'Test event sent' }).waitFor();
    const req = await eventually(() => {
      assert.equal(deliveriesTo().length, 1);
      return deliveriesTo()[0];
    });
    assert.equal(req.headers['x-agentvista-event'], 'webhook.test');
    assert.ok(signatureValid(req, secret), 'signature verifies with the shown secret');
    // The log refreshes itself until the delivery is final.
    const row = page.locator(`tr[data-delivery-id="${req.headers['x-agentvista-delivery']}"]`);
    await row.getByText('succeeded').waitFor();
    await eventually(async () => assert.equal(await page.getByTestId('log-live').textContent(), ''));
    page.assertClean();
  });

  it('shows the attempt detail, and a retry adds a manual attempt', async () => {
    await page.getByRole('link', { name: 'webhook.test' }).first().click();
    await page.getByRole('heading', { name: 'Delivery', level: 1 }).waitFor();
    const attempts = page.getByTestId('attempts');
    await attempts.locator('tbody tr').first().getByText('200').waitFor();
    await attempts.getByText(RECEIVER_BODY).waitFor();
    await attempts.getByText('automatic').waitFor();
    const payload = await page.getByTestId('payload').textContent();
    assert.match(payload, /"type": "webhook.test"/);
    assert.match(payload, /"message": "This is a test event from AgentVista Webhooks."/);
    await page.screenshot({ path: join(shots, 'console-delivery.png') });

    await page.getByRole('button', { name: 'Retry now' }).click();
    await attempts.locator('tbody tr').nth(1).getByText('manual').waitFor();
    assert.equal(await attempts.locator('tbody tr').count(), 2);
    await page.getByTestId('status').filter({ hasText: 'Manual attempt 2: succeeded (HTTP 200)' }).waitFor();
    assert.equal(deliveriesTo().length, 2);
    page.assertClean();
  });

  it('shows the endpoint paused after repeated failures, and resumes it', async () => {
    receiver.answer(500, 'broken');
    const published = await server.call('POST', `/org/${ORG}/webhooks/events`, { type: 'order.created', data: { order: 1 } }, 202);
    assert.equal(published.deliveries, 1);
    // 3 failed attempts (RETRY_SCHEDULE=1,1) reach CIRCUIT_BREAKER_THRESHOLD=3.
    const failed = await eventually(
      async () => {
        const page1 = await server.call('GET', `/org/${ORG}/webhooks/deliveries?endpoint_id=${endpointId}&status=failed`, undefined, 200);
        assert.equal(page1.deliveries.length, 1);
        return page1.deliveries[0];
      },
      { timeout: 30000 },
    );
    failedDeliveryId = failed.id;

    await page.getByRole('link', { name: 'Endpoints', exact: true }).click();
    const row = page.locator(`tr[data-endpoint-id="${endpointId}"]`);
    await eventually(
      async () => {
        await page.getByRole('button', { name: 'Refresh' }).click();
        await row.getByText('Paused').waitFor({ timeout: 1000 });
      },
      { timeout: 20000 },
    );
    assert.equal((await row.locator('td.num').textContent()).trim(), '3');
    await row.getByText('by the circuit breaker').waitFor();

    await row.getByRole('button', { name: `Resume ${hookUrl}` }).click();
    await row.getByText('Active').waitFor();
    assert.equal((await row.locator('td.num').textContent()).trim(), '0');
    await page.getByTestId('status').filter({ hasText: 'Endpoint resumed' }).waitFor();
    page.assertClean();
  });

  it('recovers the failed deliveries: dry-run count, then progress to done', async () => {
    receiver.answer(200, RECEIVER_BODY);
    const before = deliveriesTo().filter((r) => r.headers['x-agentvista-delivery'] === failedDeliveryId).length;
    assert.equal(before, 3);
    await page.locator(`tr[data-endpoint-id="${endpointId}"]`).getByRole('link', { name: hookUrl }).click();
    // The log's status filter finds the failed delivery alone.
    await page.getByLabel('Status', { exact: true }).selectOption('failed');
    await page.locator(`tr[data-delivery-id="${failedDeliveryId}"]`).getByText('failed').waitFor();
    await eventually(async () => assert.equal(await page.locator('[data-testid="deliveries"] tbody tr').count(), 1));
    await page.getByLabel('Status', { exact: true }).selectOption('');
    await eventually(async () => assert.equal(await page.locator('[data-testid="deliveries"] tbody tr').count(), 2));
    await page.getByRole('button', { name: 'Recover failed deliveries' }).click();
    const dialog = page.getByRole('dialog', { name: 'Recover failed deliveries' });
    await dialog.getByLabel('Since (your local time)').waitFor();
    await dialog.getByRole('button', { name: 'Check' }).click();
    await dialog.getByTestId('dry-run').filter({ hasText: '1 failed delivery will be sent again.' }).waitFor();
    await dialog.getByRole('button', { name: 'Recover 1 delivery' }).click();
    await page.getByTestId('recovery-progress').filter({ hasText: 'Recovery done: 1 delivery queued again.' }).waitFor({ timeout: 20000 });
    await eventually(() => assert.equal(deliveriesTo().filter((r) => r.headers['x-agentvista-delivery'] === failedDeliveryId).length, 4));
    const detail = await eventually(async () => {
      const d = await server.call('GET', `/org/${ORG}/webhooks/deliveries/${failedDeliveryId}`, undefined, 200);
      assert.equal(d.status, 'succeeded');
      return d;
    });
    assert.equal(detail.attempts.at(-1).trigger, 'manual');
    page.assertClean();
  });

  it('rotates the secret: the new one is shown once and signs the next request', async () => {
    await page.getByRole('button', { name: 'Rotate secret' }).click();
    const dialog = page.getByRole('dialog', { name: 'Rotate the signing secret?' });
    await dialog.getByRole('button', { name: 'Rotate secret' }).click();
    await page.getByRole('heading', { name: 'New signing secret' }).waitFor();
    const rotated = (await page.getByTestId('secret').textContent()).trim();
    assert.match(rotated, /^whsec_/);
    assert.notEqual(rotated, secret);
    const count = deliveriesTo().length;
    await page.getByRole('button', { name: 'Send test event' }).click();
    const req = await eventually(() => {
      assert.equal(deliveriesTo().length, count + 1);
      return deliveriesTo().at(-1);
    });
    assert.ok(signatureValid(req, rotated), 'signed with the new secret');
    assert.ok(!signatureValid(req, secret), 'not with the old one');
    secret = rotated;
    page.assertClean();
  });

  it('charts the attempts per hour, 24 hours and 7 days', async () => {
    // Attempts so far: test (ok), retry (ok), 3 failures, recovery (ok), test after rotate (ok).
    const summary = page.getByTestId('chart-summary');
    await eventually(
      async () => {
        await page.reload();
        await summary.filter({ hasText: 'Last 24 hours: 4 succeeded and 3 failed attempts' }).waitFor({ timeout: 2000 });
      },
      { timeout: 20000 },
    );
    assert.equal(await page.locator('svg.chart g.bar').count(), 24);
    // The chart and the delivery log together, for the README.
    await page.getByRole('heading', { name: 'Attempts per hour' }).evaluate((el) => el.scrollIntoView({ block: 'start' }));
    await page.screenshot({ path: join(shots, 'console-deliveries.png') });
    assert.ok((await page.locator('svg.chart rect.bad').count()) >= 1);
    await page.getByRole('button', { name: '7 days' }).click();
    await summary.filter({ hasText: 'Last 7 days: 4 succeeded and 3 failed attempts' }).waitFor();
    assert.equal(await page.locator('svg.chart g.bar').count(), 168);
    assert.equal(await page.getByRole('button', { name: '7 days' }).getAttribute('aria-pressed'), 'true');
    // The text alternative lists the busy hours.
    assert.ok((await page.locator('.chart-wrap table tbody th').count()) >= 1);

    // Loads that overlap draw the newest only: the 7-day load aborts the slow 24-hour
    // request still on its way, and nothing of it replaces the chart that the pressed
    // button says is shown.
    const slowDay = /\/stats\?window=24h/;
    let released;
    const slowReleased = new Promise((resolve) => {
      released = resolve;
    });
    await page.route(slowDay, async (route) => {
      await new Promise((r) => setTimeout(r, 1000));
      // The page has aborted the request by now: there may be nothing left to continue.
      await route.continue().catch(() => {});
      released();
    });
    try {
      const slowAborted = page.waitForEvent('requestfailed', (request) => slowDay.test(request.url()));
      await page.getByRole('button', { name: '24 hours' }).click();
      await page.getByRole('button', { name: '7 days' }).click();
      await summary.filter({ hasText: 'Last 7 days' }).waitFor();
      assert.match((await slowAborted).failure().errorText, /ERR_ABORTED/);
      await slowReleased;
      // Time for the late answer to be drawn, were it drawn at all.
      await page.waitForTimeout(500);
      assert.match(await summary.textContent(), /^Last 7 days/);
      assert.equal(await page.locator('svg.chart g.bar').count(), 168);
      assert.equal(await page.getByRole('button', { name: '7 days' }).getAttribute('aria-pressed'), 'true');
    } finally {
      await page.unroute(slowDay);
    }
    page.assertClean();
  });

  it('passes axe on sign-in, endpoint list, endpoint log and delivery detail', async () => {
    const a11y = await browser.newContext({ bypassCSP: true, viewport: { width: 1280, height: 800 } });
    try {
      const p = await watchedPage(a11y);
      await p.goto(`${server.base}/console/`);
      await p.getByLabel('API key').waitFor();
      await assertAccessible(p, 'sign-in');
      await p.getByLabel('API key').fill(server.key);
      await p.getByRole('button', { name: 'Sign in' }).click();
      await p.locator(`tr[data-endpoint-id="${endpointId}"]`).waitFor();
      await assertAccessible(p, 'endpoint list');
      await p.goto(`${server.base}/console/#/endpoints/${endpointId}`);
      await p.getByTestId('deliveries').waitFor();
      await p.getByTestId('chart-summary').waitFor();
      // The endpoint's details and actions are drawn last, in one step: axe sees a still page.
      await p.getByRole('button', { name: 'Send test event' }).waitFor();
      await assertAccessible(p, 'endpoint and delivery log');
      await p.goto(`${server.base}/console/#/deliveries/${failedDeliveryId}`);
      await p.getByTestId('attempts').waitFor();
      await assertAccessible(p, 'delivery detail');
      await p.getByRole('button', { name: 'Retry now' }).focus();
      p.assertClean();
    } finally {
      await a11y.close();
    }
  });

  it('deletes the endpoint after a confirmation', async () => {
    await page.getByRole('link', { name: 'Endpoints', exact: true }).click();
    const row = page.locator(`tr[data-endpoint-id="${endpointId}"]`);
    await row.getByRole('button', { name: `Delete ${hookUrl}` }).click();
    const dialog = page.getByRole('dialog', { name: 'Delete this endpoint?' });
    // Cancel first: nothing happens.
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'detached' });
    assert.equal(await row.count(), 1);
    await row.getByRole('button', { name: `Delete ${hookUrl}` }).click();
    await dialog.getByRole('button', { name: 'Delete endpoint' }).click();
    await row.waitFor({ state: 'detached' });
    await page.getByTestId('status').filter({ hasText: 'Endpoint deleted.' }).waitFor();
    const list = await server.call('GET', `/org/${ORG}/webhooks/endpoints`, undefined, 200);
    assert.equal(list.endpoints.length, 0);
    page.assertClean();
  });

  it('loads one endpoint by its id, and says when it no longer exists', async () => {
    page.allow(/status of 404/);
    const asked = [];
    const onRequest = (request) => asked.push(new URL(request.url()).pathname);
    page.on('request', onRequest);
    try {
      await page.evaluate((id) => {
        location.hash = `#/endpoints/${id}`;
      }, endpointId);
      await page.getByText('This endpoint does not exist (it may have been deleted).').waitFor();
      assert.equal(await page.getByRole('button', { name: 'Send test event' }).count(), 0);
      await page.evaluate((id) => {
        location.hash = `#/endpoints/${id}/edit`;
      }, endpointId);
      await page.getByRole('heading', { name: 'Edit endpoint', level: 1 }).waitFor();
      await page.getByText('This endpoint does not exist (it may have been deleted).').waitFor();
    } finally {
      page.off('request', onRequest);
    }
    const one = `/org/${ORG}/webhooks/endpoints/${endpointId}`;
    assert.equal(asked.filter((p) => p === one).length, 2, asked.join('\n'));
    assert.ok(!asked.includes(`/org/${ORG}/webhooks/endpoints`), 'the list is not read to show one endpoint');
    page.assertClean();
  });

  it('signs out, forgetting the key', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API key').waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);
    page.assertClean();
  });
});
