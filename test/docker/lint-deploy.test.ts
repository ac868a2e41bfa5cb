import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { checkCompose, checkManifests, lintDeploy } from '../../docker/lint-deploy.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));

test('the repository\'s docker-compose.yml and every docker/k8s manifest pass', async () => {
  const { checked, problems } = await lintDeploy(root);
  assert.deepEqual(problems, []);
  assert.ok(checked.includes('docker-compose.yml'));
  for (const f of ['api.yaml', 'worker.yaml', 'worker-autoscaling.yaml']) assert.ok(checked.includes(`docker/k8s/${f}`), f);
});

test('compose: an unknown service key and a wrongly typed value are named by pointer', async () => {
  const problems = await checkCompose('c.yml', 'services:\n  api:\n    image: x\n    restrat: always\n    ports: 8080\n');
  assert.ok(problems.some((p) => p.pointer === '/services/api' && p.message.includes("'restrat'")), JSON.stringify(problems));
  assert.ok(problems.some((p) => p.pointer === '/services/api/ports'), JSON.stringify(problems));
});

test('compose: a YAML syntax error is a problem, not a crash', async () => {
  const problems = await checkCompose('c.yml', 'services:\n  api: [\n');
  assert.equal(problems.length > 0, true);
  assert.match(problems[0]!.message, /^YAML: /);
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

test('kubernetes: a wrongly typed field is named by document and pointer', () => {
  assert.deepEqual(checkManifests('k.yaml', deployment('2')), []);
  const problems = checkManifests('k.yaml', `apiVersion: v1\nkind: ConfigMap\nmetadata: { name: c }\n---\n${deployment('two')}`);
  assert.deepEqual(problems.map((p) => [p.doc, p.pointer]), [[2, '/spec/replicas']]);
});

test('kubernetes: a missing required field, and a kind with no schema, are problems', () => {
  const missing = checkManifests('k.yaml', 'apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: d }\nspec: { replicas: 1 }\n');
  assert.ok(missing.some((p) => p.pointer === '/spec' && /selector/.test(p.message)), JSON.stringify(missing));
  const unknown = checkManifests('k.yaml', 'apiVersion: v1\nkind: Pod\nmetadata: { name: p }\n');
  assert.deepEqual(unknown.map((p) => p.pointer), ['/kind']);
  assert.match(unknown[0]!.message, /no schema for "v1" "Pod"/);
});

test('KEDA: a ScaledObject is checked against KEDA\'s CRD schema', () => {
  const ok = 'apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: { name: s }\nspec:\n  scaleTargetRef: { name: w }\n  triggers: [{ type: prometheus, metadata: { query: q, threshold: "1", serverAddress: http://p } }]\n';
  assert.deepEqual(checkManifests('k.yaml', ok), []);
  const bad = checkManifests('k.yaml', ok.replace('  scaleTargetRef: { name: w }\n', '  minReplicaCount: one\n'));
  assert.ok(bad.some((p) => p.pointer === '/spec' && /scaleTargetRef/.test(p.message)), JSON.stringify(bad));
  assert.ok(bad.some((p) => p.pointer === '/spec/minReplicaCount'), JSON.stringify(bad));
});
