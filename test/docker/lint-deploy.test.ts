import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { checkCompose, checkManifests, lintDeploy } from '../../docker/lint-deploy.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));

test("the repository's docker-compose.yml and every docker/k8s manifest pass", async () => {
  const { checked, problems } = await lintDeploy(root);
  assert.deepEqual(problems, []);
  assert.ok(checked.includes('docker-compose.yml'));
  for (const f of ['api.yaml', 'worker.yaml', 'worker-autoscaling.yaml']) assert.ok(checked.includes(`docker/k8s/${f}`), f);
});

test('compose: an unknown service key and a wrongly typed value are named by pointer', async () => {
  const problems = await checkCompose('c.yml', 'services:\n  api:\n    image: x\n    restrat: always\n    ports: 8080\n');
  assert.ok(
    problems.some((p) => p.pointer === '/services/api' && p.message.includes("'restrat'")),
    JSON.stringify(problems),
  );
  assert.ok(
    problems.some((p) => p.pointer === '/services/api/ports'),
    JSON.stringify(problems),
  );
});

test('compose: a YAML syntax error is a problem, not a crash', async () => {
  const problems = await checkCompose('c.yml', 'services:\n  api: [\n');
  assert.equal(problems.length > 0, true);
  assert.match(problems[0]?.message ?? '', /^YAML: /);
});

const deployment = (replicas: string) => `apiVersion: apps/v1
kind: Deployment
metadata: { name: d }
spec:
  replicas: ${replicas}
  selector: { matchLabels: { a: b } }
  template:
    metadata: { labels: { a: b } }
    spec:
      containers: [{ name: c, image: i }]
`;

const scaledObject =
  'apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: { name: s }\nspec:\n  scaleTargetRef: { name: w }\n  triggers: [{ type: prometheus, metadata: { query: q, threshold: "1", serverAddress: http://p } }]\n';

// one call: each builds a TypeScript program over the kinds' declarations, which takes seconds
test('kubernetes and KEDA: wrong types, missing and unknown fields, and kinds with no schema are named by file, document and pointer', () => {
  const problems = checkManifests(
    [
      { file: 'good.yaml', text: `${deployment('2')}---\n${scaledObject}` },
      { file: 'typed.yaml', text: `apiVersion: v1\nkind: ConfigMap\nmetadata: { name: c }\n---\n${deployment('two')}` },
      { file: 'missing.yaml', text: 'apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: d }\nspec: { replicas: 1 }\n' },
      { file: 'pod.yaml', text: 'apiVersion: v1\nkind: Pod\nmetadata: { name: p }\n' },
      {
        file: 'typo.yaml',
        text: deployment('2').replace('containers: [{ name: c, image: i }]', 'containers: [{ name: c, image: i, readinesProbe: { periodSeconds: 5 } }]'),
      },
      {
        file: 'keda.yaml',
        text: `${scaledObject.replace('  scaleTargetRef: { name: w }\n', '  minReplicaCount: one\n')}---\n${scaledObject.replace('spec:\n', 'spec:\n  pollInterval: 5\n')}`,
      },
    ],
    root,
  );
  const where = (file: string) => problems.filter((p) => p.file === file).map((p) => `${p.doc} ${p.pointer}`);
  assert.deepEqual(where('good.yaml'), []);
  assert.deepEqual(where('typed.yaml'), ['2 /spec/replicas']);
  assert.ok(
    problems.some((p) => p.file === 'missing.yaml' && p.pointer === '/spec' && /selector/.test(p.message)),
    JSON.stringify(problems),
  );
  assert.deepEqual(where('pod.yaml'), ['1 /kind']);
  assert.match(problems.find((p) => p.file === 'pod.yaml')?.message ?? '', /no schema for "v1" "Pod"/);
  const typo = problems.filter((p) => p.file === 'typo.yaml');
  assert.deepEqual(
    typo.map((p) => [p.pointer, p.message]),
    [['/spec/template/spec/containers/0/readinesProbe', "unknown field 'readinesProbe'"]],
  );
  // KEDA's CRD schema: scaleTargetRef required, minReplicaCount an integer, and no pollInterval
  assert.deepEqual(where('keda.yaml').sort(), ['1 /spec', '1 /spec/minReplicaCount', '2 /spec/pollInterval']);
});
