// hubspot.mjs drives the sandbox's HubSpot CRM emulator with HubSpot's official
// Node client (@hubspot/api-client, pinned in package.json) and checks every
// answer the way the client exposes it: typed model objects, Dates, paging
// cursors, multi-status batches and ApiExceptions. It proves the emulator
// speaks HubSpot's API as HubSpot's own client understands it.
//
//   HUBSPOT_BASE_URL=http://127.0.0.1:8090 HUBSPOT_TOKEN=... node hubspot.mjs
//
// It prints one line per check (PASS name, or FAIL name: what differed) and
// exits 1 when any check failed. Its objects are tagged with a run ID, so it
// can run against a sandbox that holds other objects too.

import { Client } from '@hubspot/api-client';
import * as contactsModels from '@hubspot/api-client/lib/codegen/crm/contacts/index.js';
import * as companiesModels from '@hubspot/api-client/lib/codegen/crm/companies/index.js';

const baseUrl = (process.env.HUBSPOT_BASE_URL ?? '').replace(/\/+$/, '');
const token = process.env.HUBSPOT_TOKEN ?? '';
if (!baseUrl || !token) {
  console.error('usage: HUBSPOT_BASE_URL=http://host:port HUBSPOT_TOKEN=token node hubspot.mjs');
  process.exit(2);
}
if (typeof fetch !== 'function') {
  console.error(`@hubspot/api-client needs the global fetch of Node 18 or later (tested on Node 20); this is Node ${process.version}`);
  process.exit(2);
}

// sent holds "METHOD URL" of every request the client made, as its own
// middleware saw it, so checks can show what the client put on the wire.
const sent = [];
const wire = { pre: (ctx) => (sent.push(`${ctx.getHttpMethod()} ${ctx.getUrl()}`), ctx), post: (ctx) => ctx };
// The client's base URL option is basePath (IConfiguration); no retries or
// limiter, so every answer reaches the checks as the emulator gave it.
const client = new Client({ accessToken: token, basePath: baseUrl, middleware: [wire] });

const run = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---- checks -----------------------------------------------------------------

let failed = 0;
let total = 0;

class Prerequisite extends Error {}

// need returns v, or stops the check when an earlier one did not produce it.
function need(v, what) {
  if (v === undefined || v === null) throw new Prerequisite(`needs ${what}, which an earlier check did not produce`);
  return v;
}

// check runs fn with a collector of problems and prints one line.
async function check(name, fn) {
  total++;
  const problems = [];
  const t = new Expect(problems);
  try {
    await fn(t);
  } catch (e) {
    problems.push(e instanceof Prerequisite ? e.message : `threw ${describe(e)}`);
  }
  if (problems.length === 0) {
    console.log(`PASS ${name}`);
  } else {
    failed++;
    console.log(`FAIL ${name}: ${problems.join('; ')}`);
  }
}

function describe(e) {
  if (e && typeof e === 'object' && 'code' in e && 'body' in e) {
    return `${e.constructor.name} code=${e.code} body=${JSON.stringify(e.body)}`;
  }
  return e instanceof Error ? `${e.constructor.name}: ${e.message.split('\n')[0]}` : String(e);
}

const show = (v) => (v instanceof Date ? `Date(${isNaN(v) ? 'Invalid' : v.toISOString()})` : JSON.stringify(v));

class Expect {
  constructor(problems) {
    this.problems = problems;
  }
  fail(msg) {
    this.problems.push(msg);
    return false;
  }
  ok(cond, msg) {
    return cond ? true : this.fail(msg);
  }
  eq(what, got, want) {
    return Object.is(got, want) ? true : this.fail(`${what}: got ${show(got)}, want ${show(want)}`);
  }
  instance(what, v, cls) {
    return v instanceof cls ? true : this.fail(`${what}: got ${v?.constructor?.name ?? show(v)}, want the client's ${cls.name}`);
  }
  date(what, v) {
    return v instanceof Date && !isNaN(v) ? true : this.fail(`${what}: got ${show(v)}, want a valid Date`);
  }
  sameSet(what, got, want) {
    const g = [...got].sort();
    const w = [...want].sort();
    return g.length === w.length && g.every((x, i) => x === w[i]) ? true : this.fail(`${what}: got ${show(g)}, want ${show(w)}`);
  }
  // object checks a CRM object as the client types it: a model instance with a
  // numeric string id, Dates createdAt <= updatedAt, archived and the
  // property values wanted (null for one HubSpot has no value for).
  object(what, o, cls, { id, archived = false, props = {} } = {}) {
    if (!this.instance(what, o, cls)) return;
    this.ok(typeof o.id === 'string' && /^[0-9]+$/.test(o.id), `${what}.id: got ${show(o.id)}, want a numeric string`);
    if (id !== undefined) this.eq(`${what}.id`, o.id, id);
    this.date(`${what}.createdAt`, o.createdAt);
    this.date(`${what}.updatedAt`, o.updatedAt);
    if (o.createdAt instanceof Date && o.updatedAt instanceof Date) {
      this.ok(o.updatedAt >= o.createdAt, `${what}: updatedAt ${show(o.updatedAt)} is before createdAt ${show(o.createdAt)}`);
    }
    this.eq(`${what}.archived`, o.archived, archived);
    if (archived) this.date(`${what}.archivedAt`, o.archivedAt);
    else this.eq(`${what}.archivedAt`, o.archivedAt, undefined);
    if (!this.ok(o.properties && typeof o.properties === 'object', `${what}.properties: got ${show(o.properties)}, want an object`)) return;
    for (const [k, v] of Object.entries(o.properties)) {
      this.ok(v === null || typeof v === 'string', `${what}.properties.${k}: got ${show(v)}, want a string or null`);
    }
    for (const [k, v] of Object.entries(props)) this.eq(`${what}.properties.${k}`, o.properties[k], v);
  }
}

// ---- what HubSpot always answers --------------------------------------------
//
// Reads record the objects they got; two checks at the end hold them to what
// HubSpot does on every read: it answers every requested property (null when
// the object has no value), and it adds hs_object_id, createdate and the
// last-modified date to the properties asked for.

const reads = { contacts: [], companies: [] };
function saw(type, op, o, requested) {
  if (o && typeof o === 'object') reads[type].push({ op, o, requested });
}
const modifiedProp = { contacts: 'lastmodifieddate', companies: 'hs_lastmodifieddate' };

// ---- the run ----------------------------------------------------------------

const s = {}; // state the checks hand on
const contactEmail = (n) => `ada.${n}.${run}@example.com`;
const companyDomain = (n) => `${n}-${run}.example.com`;

// Contacts.

await check('contacts.basicApi.create', async (t) => {
  s.contacts = [];
  for (const n of [1, 2, 3]) {
    const props = { email: contactEmail(n), firstname: `Ada${n}`, lastname: 'Lovelace', company: `Engines ${run}` };
    const c = await client.crm.contacts.basicApi.create({ properties: props, associations: [] });
    t.object(`create #${n}`, c, contactsModels.SimplePublicObject, { props });
    saw('contacts', 'basicApi.create', c, null);
    s.contacts.push(c?.id);
  }
  t.eq('distinct ids', new Set(s.contacts).size, 3);
});

const contactProps = ['email', 'firstname', 'lastname', 'company', 'phone']; // phone has no value yet

await check('contacts.basicApi.getById (repeated properties)', async (t) => {
  const id = need(s.contacts?.[0], 'a created contact');
  const c = await client.crm.contacts.basicApi.getById(id, contactProps);
  const url = new URL(sent.at(-1).split(' ')[1]);
  t.eq('the client sends properties repeated', JSON.stringify(url.searchParams.getAll('properties')), JSON.stringify(contactProps));
  t.object('getById', c, contactsModels.SimplePublicObjectWithAssociations, {
    id,
    props: { email: contactEmail(1), firstname: 'Ada1', lastname: 'Lovelace', company: `Engines ${run}` },
  });
  for (const p of ['email', 'firstname', 'lastname', 'company']) t.ok(p in (c?.properties ?? {}), `requested property ${p} missing`);
  saw('contacts', 'basicApi.getById', c, contactProps);
  s.contactCreatedAt = c?.createdAt;
});

await check('contacts.basicApi.update', async (t) => {
  const id = need(s.contacts?.[0], 'a created contact');
  const before = need(s.contactCreatedAt, 'the contact as read');
  await sleep(5);
  const c = await client.crm.contacts.basicApi.update(id, { properties: { phone: '+44 20 7946 0000', jobtitle: 'Analyst' } });
  t.object('update', c, contactsModels.SimplePublicObject, { id, props: { phone: '+44 20 7946 0000', jobtitle: 'Analyst' } });
  t.ok(c?.updatedAt > before, `update: updatedAt ${show(c?.updatedAt)} not after the earlier read's ${show(before)}`);
  const again = await client.crm.contacts.basicApi.getById(id, ['phone', 'jobtitle', 'email']);
  t.object('getById after update', again, contactsModels.SimplePublicObjectWithAssociations, {
    id,
    props: { phone: '+44 20 7946 0000', jobtitle: 'Analyst', email: contactEmail(1) },
  });
  if (c?.updatedAt instanceof Date) t.eq('getById after update: updatedAt', again?.updatedAt?.getTime(), c.updatedAt.getTime());
});

// pageThrough lists every page of an object type with the client's getPage.
async function pageThrough(t, api, model, what, limit, properties, archived) {
  const pages = [];
  let after;
  for (let i = 0; i < 1000; i++) {
    const page = await api.getPage(limit, after, properties, undefined, undefined, archived);
    t.instance(`${what} page ${i + 1}`, page, model.CollectionResponseSimplePublicObjectWithAssociationsForwardPaging);
    t.ok(Array.isArray(page?.results) && page.results.length <= limit, `${what} page ${i + 1}: results ${show(page?.results?.length)}, want an array of at most ${limit}`);
    pages.push(page);
    if (!page?.paging) break;
    t.instance(`${what} page ${i + 1}.paging`, page.paging, model.ForwardPaging);
    t.instance(`${what} page ${i + 1}.paging.next`, page.paging.next, model.NextPage);
    const next = page.paging.next?.after;
    if (!t.ok(typeof next === 'string' && next !== '', `${what} page ${i + 1}: paging.next.after ${show(next)}, want a non-empty string`)) break;
    t.ok(typeof page.paging.next.link === 'string', `${what} page ${i + 1}: paging.next.link ${show(page.paging.next.link)}, want a string`);
    if (!t.ok(next !== after, `${what} page ${i + 1}: paging.next.after ${show(next)} repeats the cursor just used`)) break;
    after = next;
  }
  const ids = pages.flatMap((p) => p?.results ?? []).map((o) => o.id);
  t.eq(`${what}: ids listed twice`, ids.filter((id, i) => ids.indexOf(id) !== i).join(','), '');
  return { pages, results: pages.flatMap((p) => p?.results ?? []) };
}

await check('contacts.basicApi.getPage (paging with after)', async (t) => {
  const ours = need(s.contacts?.length === 3 ? s.contacts : undefined, 'three created contacts');
  const { pages, results } = await pageThrough(t, client.crm.contacts.basicApi, contactsModels, 'getPage', 2, ['email', 'phone']);
  t.ok(pages.length >= 2, `getPage: ${pages.length} page(s) of at most 2, want at least 2`);
  const mine = results.filter((c) => ours.includes(c.id));
  t.sameSet('getPage: our contacts listed', mine.map((c) => c.id), ours);
  for (const c of mine) {
    t.object(`getPage contact ${c.id}`, c, contactsModels.SimplePublicObjectWithAssociations, { props: { email: contactEmail(ours.indexOf(c.id) + 1) } });
    saw('contacts', 'basicApi.getPage', c, ['email', 'phone']);
  }
  const all = await client.crm.contacts.getAll(2, undefined, ['email']);
  t.sameSet("the client's getAll helper", all.map((c) => c.id).filter((id) => ours.includes(id)), ours);
  t.eq("getAll lists what getPage does", all.length, results.length);
});

await check('contacts.searchApi.doSearch (EQ on email)', async (t) => {
  const id = need(s.contacts?.[1], 'a created contact');
  const props = ['email', 'firstname', 'phone'];
  const res = await client.crm.contacts.searchApi.doSearch({
    filterGroups: [{ filters: [{ propertyName: 'email', operator: contactsModels.FilterOperatorEnum.Eq, value: contactEmail(2) }] }],
    properties: props,
    limit: 10,
  });
  t.instance('doSearch', res, contactsModels.CollectionResponseWithTotalSimplePublicObjectForwardPaging);
  t.eq('doSearch.total', res?.total, 1);
  t.eq('doSearch.results.length', res?.results?.length, 1);
  t.eq('doSearch.paging', res?.paging, undefined);
  t.object('doSearch result', res?.results?.[0], contactsModels.SimplePublicObject, { id, props: { email: contactEmail(2), firstname: 'Ada2' } });
  saw('contacts', 'searchApi.doSearch', res?.results?.[0], props);
  const none = await client.crm.contacts.searchApi.doSearch({
    filterGroups: [{ filters: [{ propertyName: 'email', operator: contactsModels.FilterOperatorEnum.Eq, value: `nobody.${run}@example.com` }] }],
  });
  t.eq('doSearch for nobody: total', none?.total, 0);
  t.eq('doSearch for nobody: results', JSON.stringify(none?.results), '[]');
});

await check('contacts.batchApi.read', async (t) => {
  const ids = need(s.contacts?.length === 3 ? s.contacts.slice(0, 2) : undefined, 'created contacts');
  const props = ['email', 'lastname', 'phone'];
  const res = await client.crm.contacts.batchApi.readWithHttpInfo({ inputs: ids.map((id) => ({ id })), properties: props, propertiesWithHistory: [] });
  t.eq('batch read: HTTP status', res.httpStatusCode, 200);
  const body = res.data;
  t.instance('batch read', body, contactsModels.BatchResponseSimplePublicObject);
  t.eq('batch read.status', body?.status, contactsModels.BatchResponseSimplePublicObjectStatusEnum.Complete);
  t.date('batch read.startedAt', body?.startedAt);
  t.date('batch read.completedAt', body?.completedAt);
  t.sameSet('batch read ids', (body?.results ?? []).map((c) => c.id), ids);
  for (const c of body?.results ?? []) {
    t.object(`batch read contact ${c.id}`, c, contactsModels.SimplePublicObject, { props: { email: contactEmail(s.contacts.indexOf(c.id) + 1), lastname: 'Lovelace' } });
    saw('contacts', 'batchApi.read', c, props);
  }
  t.eq('batch read.errors', body?.errors, undefined);
});

// Companies.

await check('companies.basicApi.create', async (t) => {
  const props = { name: `Analytical Engines ${run}`, domain: companyDomain('a'), city: 'London', address: run };
  const c = await client.crm.companies.basicApi.create({ properties: props, associations: [] });
  t.object('create', c, companiesModels.SimplePublicObject, { props });
  saw('companies', 'basicApi.create', c, null);
  s.companyA = c?.id;
});

const companyProps = ['name', 'domain', 'city', 'industry']; // industry has no value

await check('companies.basicApi.getById', async (t) => {
  const id = need(s.companyA, 'a created company');
  const c = await client.crm.companies.basicApi.getById(id, companyProps);
  t.eq('the client sends properties repeated', JSON.stringify(new URL(sent.at(-1).split(' ')[1]).searchParams.getAll('properties')), JSON.stringify(companyProps));
  t.object('getById', c, companiesModels.SimplePublicObjectWithAssociations, {
    id,
    props: { name: `Analytical Engines ${run}`, domain: companyDomain('a'), city: 'London' },
  });
  saw('companies', 'basicApi.getById', c, companyProps);
  s.companyAUpdatedAt = c?.updatedAt;
});

await check('companies.basicApi.update', async (t) => {
  const id = need(s.companyA, 'a created company');
  const before = need(s.companyAUpdatedAt, 'the company as read');
  await sleep(5);
  const c = await client.crm.companies.basicApi.update(id, { properties: { city: 'Cambridge', phone: '+44 1223 000000' } });
  t.object('update', c, companiesModels.SimplePublicObject, { id, props: { city: 'Cambridge', phone: '+44 1223 000000' } });
  t.ok(c?.updatedAt > before, `update: updatedAt ${show(c?.updatedAt)} not after the earlier read's ${show(before)}`);
  const again = await client.crm.companies.basicApi.getById(id, ['city', 'phone', 'name']);
  t.object('getById after update', again, companiesModels.SimplePublicObjectWithAssociations, {
    id,
    props: { city: 'Cambridge', phone: '+44 1223 000000', name: `Analytical Engines ${run}` },
  });
});

await check('companies.batchApi.create', async (t) => {
  const inputs = [1, 2, 3, 4].map((n) => ({ properties: { name: `Difference Engine ${n} ${run}`, domain: companyDomain(`b${n}`), address: run }, associations: [] }));
  const res = await client.crm.companies.batchApi.createWithHttpInfo({ inputs });
  t.eq('batch create: HTTP status', res.httpStatusCode, 201);
  const body = res.data;
  t.instance('batch create', body, companiesModels.BatchResponseSimplePublicObject);
  t.eq('batch create.status', body?.status, companiesModels.BatchResponseSimplePublicObjectStatusEnum.Complete);
  t.date('batch create.startedAt', body?.startedAt);
  t.date('batch create.completedAt', body?.completedAt);
  t.eq('batch create.results.length', body?.results?.length, 4);
  s.companyB = [];
  for (const n of [1, 2, 3, 4]) {
    const c = (body?.results ?? []).find((r) => r?.properties?.name === `Difference Engine ${n} ${run}`);
    if (!t.ok(c, `batch create: no result named Difference Engine ${n}`)) continue;
    t.object(`batch create #${n}`, c, companiesModels.SimplePublicObject, { props: inputs[n - 1].properties });
    saw('companies', 'batchApi.create', c, null);
    s.companyB[n] = c.id;
  }
  t.eq('batch create: distinct ids', new Set(s.companyB.filter(Boolean).concat(s.companyA)).size, 5);
});

await check('companies.batchApi.read', async (t) => {
  const ids = [need(s.companyA, 'company A'), need(s.companyB?.[1], 'company B1'), need(s.companyB?.[2], 'company B2')];
  const props = ['name', 'domain', 'industry'];
  const res = await client.crm.companies.batchApi.readWithHttpInfo({ inputs: ids.map((id) => ({ id })), properties: props, propertiesWithHistory: [] });
  t.eq('batch read: HTTP status', res.httpStatusCode, 200);
  const body = res.data;
  t.instance('batch read', body, companiesModels.BatchResponseSimplePublicObject);
  t.eq('batch read.status', body?.status, companiesModels.BatchResponseSimplePublicObjectStatusEnum.Complete);
  t.date('batch read.startedAt', body?.startedAt);
  t.date('batch read.completedAt', body?.completedAt);
  t.sameSet('batch read ids', (body?.results ?? []).map((c) => c.id), ids);
  for (const c of body?.results ?? []) {
    const domain = c.id === s.companyA ? companyDomain('a') : companyDomain(`b${s.companyB.indexOf(c.id)}`);
    t.object(`batch read company ${c.id}`, c, companiesModels.SimplePublicObject, { props: { domain } });
    saw('companies', 'batchApi.read', c, props);
  }
});

await check('companies.batchApi.read naming a missing id (207 Multi-Status)', async (t) => {
  const id = need(s.companyA, 'company A');
  const missing = '999999999999';
  // The client resolves a 207 (it does not throw) with the WithErrors model.
  const res = await client.crm.companies.batchApi.readWithHttpInfo({ inputs: [{ id }, { id: missing }], properties: ['name'], propertiesWithHistory: [] });
  t.eq('HTTP status', res.httpStatusCode, 207);
  const body = res.data;
  t.instance('answer', body, companiesModels.BatchResponseSimplePublicObjectWithErrors);
  t.eq('status', body?.status, companiesModels.BatchResponseSimplePublicObjectWithErrorsStatusEnum.Complete);
  t.date('startedAt', body?.startedAt);
  t.date('completedAt', body?.completedAt);
  t.eq('results ids', JSON.stringify((body?.results ?? []).map((c) => c.id)), JSON.stringify([id]));
  t.object('result', body?.results?.[0], companiesModels.SimplePublicObject, { id, props: { name: `Analytical Engines ${run}` } });
  t.eq('numErrors', body?.numErrors, 1);
  t.eq('errors.length', body?.errors?.length, 1);
  const err = body?.errors?.[0];
  t.instance('errors[0]', err, companiesModels.StandardError);
  t.eq('errors[0].status', err?.status, 'error');
  t.eq('errors[0].category', err?.category, 'OBJECT_NOT_FOUND');
  t.ok(typeof err?.message === 'string' && err.message !== '', `errors[0].message: got ${show(err?.message)}, want a message`);
  t.eq('errors[0].context.ids', JSON.stringify(err?.context?.ids), JSON.stringify([missing]));
  // Through the plain method the 207 is a resolved value as well.
  const plain = await client.crm.companies.batchApi.read({ inputs: [{ id: missing }], properties: [], propertiesWithHistory: [] });
  t.instance('read() of only a missing id', plain, companiesModels.BatchResponseSimplePublicObjectWithErrors);
  t.eq('read() of only a missing id: results', JSON.stringify(plain?.results), '[]');
  t.eq('read() of only a missing id: errors[0].context.ids', JSON.stringify(plain?.errors?.[0]?.context?.ids), JSON.stringify([missing]));
});

await check('companies.batchApi.update', async (t) => {
  const ids = [1, 2, 3].map((n) => need(s.companyB?.[n], `company B${n}`));
  await sleep(20); // the search below tells these updates from the creates by time
  const inputs = ids.map((id, i) => ({ id, properties: { description: `updated ${i + 1} ${run}` } }));
  const res = await client.crm.companies.batchApi.updateWithHttpInfo({ inputs });
  t.eq('batch update: HTTP status', res.httpStatusCode, 200);
  const body = res.data;
  t.instance('batch update', body, companiesModels.BatchResponseSimplePublicObject);
  t.eq('batch update.status', body?.status, companiesModels.BatchResponseSimplePublicObjectStatusEnum.Complete);
  t.date('batch update.startedAt', body?.startedAt);
  t.date('batch update.completedAt', body?.completedAt);
  t.sameSet('batch update ids', (body?.results ?? []).map((c) => c.id), ids);
  for (const c of body?.results ?? []) {
    const i = ids.indexOf(c.id);
    t.object(`batch update company ${c.id}`, c, companiesModels.SimplePublicObject, { props: { description: `updated ${i + 1} ${run}` } });
  }
  // The search's threshold: the earliest update; each update bumps
  // hs_lastmodifieddate, so all three are at or after it and company A
  // (updated 20ms before) is not.
  const times = (body?.results ?? []).map((c) => c.updatedAt?.getTime()).filter(Number.isFinite);
  if (t.eq('batch update: updatedAt of every result', times.length, 3)) s.searchSince = Math.min(...times);
  // Update B2, then B1, later still: sorted by hs_lastmodifieddate ascending
  // they come B3, B2, B1, against the order of their ids.
  for (const n of [2, 1]) {
    await sleep(5);
    const c = await client.crm.companies.basicApi.update(s.companyB[n], { properties: { description: `touched ${n} ${run}` } });
    t.eq(`update of B${n}: description`, c?.properties?.description, `touched ${n} ${run}`);
  }
});

await check('companies.basicApi.archive', async (t) => {
  const id = need(s.companyB?.[4], 'company B4');
  const res = await client.crm.companies.basicApi.archiveWithHttpInfo(id);
  t.eq('archive: HTTP status', res.httpStatusCode, 204);
  t.eq('archive: data', res.data, undefined);
  try {
    const c = await client.crm.companies.basicApi.getById(id, ['name']);
    t.fail(`getById of the archived company without archived=true: got ${show(c?.id)}, want ApiException 404`);
  } catch (e) {
    t.instance('getById of the archived company', e, companiesModels.ApiException);
    t.eq('getById of the archived company: code', e?.code, 404);
  }
  s.archived = id;
});

await check('companies.basicApi.getById archived=true', async (t) => {
  const id = need(s.archived, 'an archived company');
  const c = await client.crm.companies.basicApi.getById(id, ['name', 'domain'], undefined, undefined, true);
  t.eq('the client sends archived=true', new URL(sent.at(-1).split(' ')[1]).searchParams.get('archived'), 'true');
  t.object('getById archived', c, companiesModels.SimplePublicObjectWithAssociations, {
    id,
    archived: true,
    props: { name: `Difference Engine 4 ${run}`, domain: companyDomain('b4') },
  });
  if (c?.archivedAt instanceof Date && c?.createdAt instanceof Date) t.ok(c.archivedAt >= c.createdAt, `archivedAt ${show(c.archivedAt)} before createdAt`);
  saw('companies', 'basicApi.getById archived', c, ['name', 'domain']);
  try {
    const live = await client.crm.companies.basicApi.getById(need(s.companyA, 'company A'), ['name'], undefined, undefined, true);
    t.fail(`getById archived=true of a live company: got ${show(live?.id)}, want ApiException 404`);
  } catch (e) {
    t.eq('getById archived=true of a live company: code', e?.code, 404);
  }
});

await check('companies.basicApi.getPage (paging with after)', async (t) => {
  const live = [need(s.companyA, 'company A'), ...[1, 2, 3].map((n) => need(s.companyB?.[n], `company B${n}`))];
  const archived = need(s.archived, 'an archived company');
  const props = ['name', 'industry'];
  const { pages, results } = await pageThrough(t, client.crm.companies.basicApi, companiesModels, 'getPage', 2, props);
  t.ok(pages.length >= 2, `getPage: ${pages.length} page(s) of at most 2, want at least 2`);
  const ids = results.map((c) => c.id);
  t.sameSet('getPage: our live companies listed', ids.filter((id) => live.includes(id) || id === archived), live);
  for (const c of results.filter((r) => live.includes(r.id))) {
    t.object(`getPage company ${c.id}`, c, companiesModels.SimplePublicObjectWithAssociations);
    t.ok(c.properties?.name?.endsWith(run), `getPage company ${c.id}: name ${show(c.properties?.name)}`);
    saw('companies', 'basicApi.getPage', c, props);
  }
  const bin = await pageThrough(t, client.crm.companies.basicApi, companiesModels, 'getPage archived=true', 2, ['name'], true);
  const got = bin.results.find((c) => c.id === archived);
  t.ok(got, `getPage archived=true: archived company ${archived} not listed`);
  t.eq('getPage archived=true: no live company listed', bin.results.filter((c) => live.includes(c.id)).length, 0);
  if (got) t.object('getPage archived=true company', got, companiesModels.SimplePublicObjectWithAssociations, { id: archived, archived: true });
  const all = await client.crm.companies.getAll(2, undefined, ['name']);
  t.eq("the client's getAll helper lists what getPage does", JSON.stringify(all.map((c) => c.id)), JSON.stringify(ids));
});

await check('companies.searchApi.doSearch (GTE hs_lastmodifieddate, sort, paging)', async (t) => {
  const since = need(s.searchSince, 'the batch update time');
  const want = [3, 2, 1].map((n) => need(s.companyB?.[n], `company B${n}`)); // by hs_lastmodifieddate, ascending
  const props = ['name', 'description', 'hs_lastmodifieddate', 'industry'];
  const request = (after) => ({
    filterGroups: [{
      filters: [
        { propertyName: 'hs_lastmodifieddate', operator: companiesModels.FilterOperatorEnum.Gte, value: String(since) },
        { propertyName: 'address', operator: companiesModels.FilterOperatorEnum.Eq, value: run },
      ],
    }],
    // The client types sorts as string[] but sends what it is given
    // unchanged; this is the object form HubSpot documents.
    sorts: [{ propertyName: 'hs_lastmodifieddate', direction: 'ASCENDING' }],
    properties: props,
    limit: 2,
    after,
  });
  const got = [];
  let after;
  let pages = 0;
  for (; pages < 10; pages++) {
    const res = await client.crm.companies.searchApi.doSearch(request(after));
    t.instance(`page ${pages + 1}`, res, companiesModels.CollectionResponseWithTotalSimplePublicObjectForwardPaging);
    t.eq(`page ${pages + 1}.total`, res?.total, want.length);
    t.ok((res?.results?.length ?? 0) <= 2, `page ${pages + 1}: ${show(res?.results?.length)} results, want at most the limit 2`);
    for (const c of res?.results ?? []) {
      t.object(`page ${pages + 1} company ${c.id}`, c, companiesModels.SimplePublicObject);
      saw('companies', 'searchApi.doSearch', c, props);
      got.push(c);
    }
    const next = res?.paging?.next?.after;
    if (next === undefined) break;
    t.instance(`page ${pages + 1}.paging.next`, res.paging.next, companiesModels.NextPage);
    if (!t.ok(typeof next === 'string' && next !== '' && next !== after, `page ${pages + 1}: paging.next.after ${show(next)}, want a new non-empty string`)) break;
    after = next;
  }
  t.eq('pages', pages + 1, 2);
  t.eq('ids in order', JSON.stringify(got.map((c) => c.id)), JSON.stringify(want));
  const times = got.map((c) => Date.parse(c.properties?.hs_lastmodifieddate ?? ''));
  for (let i = 0; i < got.length; i++) {
    const c = got[i];
    t.ok(times[i] >= since, `company ${c.id}: hs_lastmodifieddate ${show(c.properties?.hs_lastmodifieddate)} before the GTE value ${new Date(since).toISOString()}`);
    if (i > 0) t.ok(times[i] >= times[i - 1], `company ${c.id}: hs_lastmodifieddate ${show(c.properties?.hs_lastmodifieddate)} out of ascending order`);
    t.eq(`company ${c.id}: updatedAt is hs_lastmodifieddate`, c.updatedAt?.toISOString(), c.properties?.hs_lastmodifieddate);
    const n = s.companyB.indexOf(c.id);
    t.eq(`company ${c.id}: name`, c.properties?.name, `Difference Engine ${n} ${run}`);
    t.eq(`company ${c.id}: description`, c.properties?.description, n === 3 ? `updated 3 ${run}` : `touched ${n} ${run}`);
  }
  // GTE is inclusive: the earliest update's own millisecond matches it.
  const exact = await client.crm.companies.searchApi.doSearch({
    ...request(undefined),
    filterGroups: [{ filters: [
      { propertyName: 'hs_lastmodifieddate', operator: companiesModels.FilterOperatorEnum.Gte, value: String(Date.parse(got.at(-1)?.properties?.hs_lastmodifieddate ?? '')) },
      { propertyName: 'address', operator: companiesModels.FilterOperatorEnum.Eq, value: run },
    ] }],
  });
  t.eq('GTE at the latest hs_lastmodifieddate: ids', JSON.stringify((exact?.results ?? []).map((c) => c.id)), JSON.stringify(want.slice(-1)));
});

// Errors.

await check('errors: getById of an unknown id is ApiException 404', async (t) => {
  for (const [type, api, model] of [
    ['contacts', client.crm.contacts.basicApi, contactsModels],
    ['companies', client.crm.companies.basicApi, companiesModels],
  ]) {
    try {
      const o = await api.getById('999999999999', ['name']);
      t.fail(`${type}: got ${show(o?.id)}, want ApiException 404`);
    } catch (e) {
      t.instance(`${type}: error`, e, model.ApiException);
      t.eq(`${type}: code`, e?.code, 404);
      // The client parses an error's JSON body as "Error", which its type
      // map lacks, so the body is the plain parsed object.
      t.ok(e?.body && typeof e.body === 'object', `${type}: body ${show(e?.body)}, want HubSpot's JSON error`);
      t.ok(typeof e?.body?.message === 'string' && e.body.message !== '', `${type}: body.message ${show(e?.body?.message)}, want a message`);
      t.ok(typeof e?.body?.category === 'string' && e.body.category !== '', `${type}: body.category ${show(e?.body?.category)}, want a category`);
      t.ok(typeof e?.body?.correlationId === 'string' && e.body.correlationId !== '', `${type}: body.correlationId ${show(e?.body?.correlationId)}, want one`);
    }
  }
});

await check('errors: a wrong token is ApiException 401', async (t) => {
  const wrong = new Client({ accessToken: `wrong-${token}`, basePath: baseUrl });
  const calls = [
    ['contacts.getById', contactsModels, () => wrong.crm.contacts.basicApi.getById(need(s.contacts?.[0], 'a contact'))],
    ['contacts.create', contactsModels, () => wrong.crm.contacts.basicApi.create({ properties: { email: contactEmail(9) }, associations: [] })],
    ['companies.doSearch', companiesModels, () => wrong.crm.companies.searchApi.doSearch({ filterGroups: [] })],
    ['companies.batchApi.read', companiesModels, () => wrong.crm.companies.batchApi.read({ inputs: [{ id: '1' }], properties: [], propertiesWithHistory: [] })],
  ];
  for (const [what, model, call] of calls) {
    try {
      const r = await call();
      t.fail(`${what}: resolved ${show(r)}, want ApiException 401`);
    } catch (e) {
      if (e instanceof Prerequisite) throw e;
      t.instance(`${what}: error`, e, model.ApiException);
      t.eq(`${what}: code`, e?.code, 401);
      t.ok(e?.body && typeof e.body === 'object', `${what}: body ${show(e?.body)}, want HubSpot's JSON error`);
      t.eq(`${what}: body.category`, e?.body?.category, 'INVALID_AUTHENTICATION');
    }
  }
  // Nothing was created with the wrong token.
  const found = await client.crm.contacts.searchApi.doSearch({
    filterGroups: [{ filters: [{ propertyName: 'email', operator: contactsModels.FilterOperatorEnum.Eq, value: contactEmail(9) }] }],
  });
  t.eq('contacts created with the wrong token', found?.total, 0);
});

// What HubSpot answers on every read.

for (const type of ['contacts', 'companies']) {
  await check(`${type}: reads answer every requested property, null when it has no value`, (t) => {
    need(reads[type].length ? true : undefined, `${type} reads`);
    const missing = new Map();
    for (const { op, o, requested } of reads[type]) {
      for (const p of requested ?? []) {
        if (!(p in (o.properties ?? {}))) missing.set(`${op} ${p}`, (missing.get(`${op} ${p}`) ?? 0) + 1);
        else if (o.properties[p] === undefined) t.fail(`${op}: ${p} is undefined, want null or a string`);
      }
    }
    for (const [k, n] of missing) t.fail(`${k} absent from properties in ${n} object(s), want it present (null when unset)`);
  });
  await check(`${type}: reads add hs_object_id, createdate and ${modifiedProp[type]}`, (t) => {
    need(reads[type].length ? true : undefined, `${type} reads`);
    const absent = new Map();
    for (const { op, o } of reads[type]) {
      const p = o.properties ?? {};
      for (const [name, want] of [
        ['hs_object_id', o.id],
        ['createdate', o.createdAt instanceof Date ? o.createdAt.toISOString() : undefined],
        [modifiedProp[type], o.updatedAt instanceof Date ? o.updatedAt.toISOString() : undefined],
      ]) {
        if (!(name in p)) absent.set(`${op} ${name}`, (absent.get(`${op} ${name}`) ?? 0) + 1);
        else t.eq(`${op} object ${o.id}: properties.${name}`, p[name], want);
      }
    }
    for (const [k, n] of absent) t.fail(`${k} absent in ${n} object(s)`);
  });
}

console.log(`${total} checks, ${failed} failed (client @hubspot/api-client, Node ${process.version}, ${sent.length} requests to ${baseUrl})`);
process.exit(failed ? 1 : 0);
