/**
 * Generated and mutated requests against every route (fast-check): whatever arrives, the
 * answer is never a 5xx, the process stays up, and rejected requests change nothing stored.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { startApi, type Api } from '../helpers/api.js';
import { registerMnist, trainSpec } from '../helpers/harness.js';

let h: Api;
let data: { train: string; test: string };

before(async () => {
  h = await startApi();
  data = await registerMnist(h, 200, 100);
});
after(() => h?.stop());

const RUNS = Number(process.env.FUZZ_RUNS ?? 5000);

// never the ids of stored objects: a DELETE that worked would be a legitimate change
const ids = () =>
  fc.oneof(
    fc.constantFrom('ds_0000000000000000', 'job_000', 'mdl_x', '..%2F..%2Fetc%2Fpasswd', '%00', 'a'.repeat(300), '%E2%80%AE'),
    fc.string({ maxLength: 40 }).map(encodeURIComponent),
  );
const json = fc.jsonValue({ maxDepth: 3 });

/** A valid spec with one to three random changes: a key dropped, a value replaced, an unknown key added. */
const mutatedSpec = () =>
  fc
    .array(
      fc.tuple(
        fc.constantFrom('drop', 'replace', 'add'),
        fc.constantFrom('type', 'model', 'data', 'hyperparameters', 'strategy', 'metadata', 'webhook'),
        fc.constantFrom('', 'epochs', 'batchSize', 'optimizer', 'train', 'architecture', 'base'),
        json,
      ),
      { minLength: 1, maxLength: 3 },
    )
    .map((muts) => {
      const spec: any = structuredClone(trainSpec(data));
      for (const [op, key, sub, value] of muts) {
        const target = sub && spec[key] && typeof spec[key] === 'object' ? spec[key] : spec;
        const k = sub && target !== spec ? sub : key;
        if (op === 'drop') delete target[k];
        else if (op === 'replace') target[k] = value;
        else target[`x_${k}`] = value;
      }
      return spec;
    });

const request = () =>
  fc.oneof(
    fc.record({ method: fc.constant('POST'), path: fc.constant('/v1/jobs'), body: fc.oneof(mutatedSpec(), json) }),
    fc.record({ method: fc.constant('POST'), path: fc.constant('/v1/datasets'), body: fc.oneof(json, fc.record({ name: fc.string(), source: json })) }),
    fc.record({ method: fc.constant('POST'), path: fc.constant('/v1/models'), body: json }),
    fc.record({
      method: fc.constantFrom('GET', 'DELETE', 'POST', 'PUT', 'PATCH'),
      path: fc
        .tuple(
          fc.constantFrom('/v1/jobs/', '/v1/datasets/', '/v1/models/'),
          ids(),
          fc.constantFrom('', '/events', '/checkpoints', '/cancel', '/pause', '/resume', '/model.json', '/weights.bin', '/examples'),
        )
        .map(([a, b, c]) => a + b + c),
      body: fc.constant(undefined),
    }),
    fc.record({
      method: fc.constant('GET'),
      path: fc
        .tuple(
          fc.constantFrom('/v1/jobs', '/v1/datasets', '/v1/models', `/v1/jobs/x/events`),
          fc.dictionary(fc.constantFrom('limit', 'after', 'status', 'type', 'offset', 'zzz'), fc.oneof(fc.string({ maxLength: 12 }), fc.integer().map(String))),
        )
        .map(([p, q]) => `${p}?${new URLSearchParams(q)}`),
      body: fc.constant(undefined),
    }),
  );

async function counts() {
  const q = async (path: string) => (await h.request('GET', `${path}?limit=200`)).body.data.length;
  return { jobs: await q('/v1/jobs'), datasets: await q('/v1/datasets'), models: await q('/v1/models') };
}

test(`${RUNS} generated and mutated requests: no 5xx, still up, rejected requests change nothing`, { timeout: 10 * 60_000 }, async () => {
  const before = await counts();
  const created = { jobs: 0, datasets: 0, models: 0 };
  const statuses = new Map<number, number>();
  const accepted: string[] = [];
  await fc.assert(
    fc.asyncProperty(
      request(),
      fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1'),
      async (r, contentType) => {
        const body = r.body === undefined ? undefined : JSON.stringify(r.body);
        // through inject: the routes, parsers and validators a socket would reach, without an HTTP client's cost in this process
        const res = await h.request(r.method, r.path, body, body !== undefined ? { 'content-type': contentType } : {});
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        assert.ok(res.status < 500, `${r.method} ${r.path} ${body ?? ''} -> ${res.status} ${JSON.stringify(res.body)}`);
        if (res.status >= 400)
          assert.match(res.headers.get('content-type') ?? '', /application\/problem\+json/, `${r.method} ${r.path} -> ${res.status} without problem+json`);
        if (res.status < 300 && r.method !== 'GET') accepted.push(`${r.method} ${r.path} -> ${res.status}`);
        if (res.status < 300 && r.method === 'POST' && r.path === '/v1/jobs') created.jobs++;
        if (res.status < 300 && r.method === 'POST' && r.path === '/v1/datasets') created.datasets++;
        if (res.status < 300 && r.method === 'POST' && r.path === '/v1/models') created.models++;
      },
    ),
    { numRuns: RUNS },
  );
  assert.equal((await h.request('GET', '/health')).status, 200, 'still up');
  const afterCounts = await counts();
  assert.equal(afterCounts.jobs, before.jobs + created.jobs, `only accepted job requests created jobs; accepted: ${accepted.join('; ')}`);
  assert.equal(afterCounts.datasets, before.datasets + created.datasets);
  // accepted jobs train and may have produced their model by now
  assert.ok(afterCounts.models <= before.models + created.models + created.jobs, `models ${before.models} -> ${afterCounts.models}`);
  console.log(`statuses: ${JSON.stringify(Object.fromEntries(statuses))}`);
});
