/**
 * A model imported from a URL (`POST /v1/models` with `{source: {url}}`): model.json is fetched,
 * then every weights file its manifest names, relative to where model.json finally came from,
 * each under the webhooks' address policy and within the upload limit (see fetch-url.ts); then
 * the files are checked and stored exactly as an upload's. It runs after the 202, in this process,
 * holding one model-check slot; the model goes from `validating` to `ready`, or to `failed` with
 * an error whose pointer names the URL or the part of model.json at fault.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Artifacts } from '../../artifacts/artifacts.js';
import { FetchRefused, fetchToFile } from '../../artifacts/model-upload/fetch-url.js';
import { removeUnowned, type PendingDeleteDeps } from '../../artifacts/pending-deletes.js';
import { parseModelJson, type UploadedWeights } from '../../artifacts/model-upload/manifest.js';
import { HttpProblem } from '../../plugins/problem.js';
import type { ModelError, ModelStore } from '../../store/models.js';
import { acceptModel, MAX_MODEL_JSON_BYTES, type ModelUploadDeps } from './upload.js';
import type { Preprocessing } from '../../jobs/preprocessing.js';

export interface ModelImport {
  id: string;
  url: string;
  name: string;
  preprocessing?: Preprocessing;
}

export interface ModelImportDeps extends ModelUploadDeps {
  models: ModelStore;
  artifacts: Artifacts;
  /** where a model directory that lost its record goes */
  unowned: PendingDeleteDeps;
  allowedHosts: readonly string[];
  /** the most bytes model.json and its weights may take together (UPLOAD_LIMIT_BYTES) */
  maxBytes: number;
  timeoutMs: number;
}

/** Why an import failed, as the model's `error`. */
function failure(err: unknown, pointer: string): ModelError {
  if (err instanceof FetchRefused) return { code: 'fetch_failed', message: err.message, pointer };
  if (err instanceof HttpProblem) {
    const first = err.errors?.[0];
    const message = err.errors?.length ? err.errors.map((e) => `${e.pointer} ${e.detail}`).join('; ') : (err.detail ?? err.title);
    return { code: err.slug, message, ...(first ? { pointer: first.pointer } : {}) };
  }
  return { code: 'internal_error', message: (err as Error).message };
}

/** Fetches, checks and stores the model; records the outcome on its row. Never throws. */
export async function runModelImport(job: ModelImport, dir: string, deps: ModelImportDeps): Promise<void> {
  const work = deps.artifacts.uploadDir(job.id);
  let pointer = '/source/url';
  try {
    const fetchOptions = { allowedHosts: deps.allowedHosts, timeoutMs: deps.timeoutMs };
    const jsonFile = join(work, 'model.json');
    await mkdir(work, { recursive: true });
    const fetched = await fetchToFile(job.url, jsonFile, { ...fetchOptions, maxBytes: Math.min(MAX_MODEL_JSON_BYTES, deps.maxBytes) });
    const text = await readFile(jsonFile, 'utf8');
    const parsed = parseModelJson(text);
    // refused again, with the same pointers, by acceptModel below; the paths are needed first
    const groups = 'json' in parsed ? parsed.json.weightsManifest : [];
    let budget = deps.maxBytes - fetched.bytes;
    const weights: UploadedWeights[] = [];
    for (const [g, group] of groups.entries()) {
      for (const [p, path] of group.paths.entries()) {
        pointer = `/modelJson/weightsManifest/${g}/paths/${p}`;
        const filename = `${weights.length}`;
        const got = await fetchToFile(new URL(path, fetched.url).href, join(work, filename), { ...fetchOptions, maxBytes: budget });
        budget -= got.bytes;
        weights.push({ filename: path.split('/').pop() ?? path, path: join(work, filename), bytes: got.bytes });
      }
    }
    pointer = '/modelJson';
    const accepted = await acceptModel({ text, weights, name: job.name, ...(job.preprocessing ? { preprocessing: job.preprocessing } : {}) }, dir, deps);
    const ready = await deps.models.markReady(job.id, {
      inputShape: accepted.inputShape,
      classes: accepted.classes,
      preprocessing: accepted.preprocessing,
      bytes: accepted.bytes,
    });
    // deleted (or failed as abandoned) while it was importing: the files have no owner
    if (!ready) await removeUnowned(deps.unowned, [dir]);
  } catch (err) {
    await deps.models.markFailed(job.id, failure(err, pointer)).catch(() => undefined);
  } finally {
    await deps.artifacts.remove(work).catch(() => undefined);
  }
}
