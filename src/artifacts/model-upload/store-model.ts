/**
 * Turns an accepted upload into a stored model: model.json with its manifest rewritten to one
 * weights.bin, the shards concatenated in manifest order (streamed, never held in memory), then
 * dequantized and loaded by TensorFlow.js in a child process. Problems come back as pointers into
 * the upload.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { FieldError } from '../../field-error.js';
import { checkModel } from './check-model.js';
import { storedModelJson, type ModelJson, type WeightPlan } from './manifest.js';

export interface StoredModel {
  inputShape: number[] | null;
  numClasses: number;
}

export class ModelRejected extends Error {
  constructor(readonly errors: FieldError[]) {
    super(errors.map((e) => `${e.pointer} ${e.detail}`).join('; '));
  }
}

const problem = (pointer: string, detail: string): FieldError => ({ pointer, in: 'body', detail });

async function concatenate(files: WeightPlan['files'], to: string): Promise<void> {
  const out = createWriteStream(to);
  try {
    for (const f of files) await pipeline(createReadStream(f.path), out, { end: false });
  } finally {
    await new Promise<void>((done, fail) => out.end((err?: Error | null) => (err ? fail(err) : done())));
  }
}

/** Writes the model into `dir` and checks it; throws ModelRejected for a bad model. */
export async function storeModel(dir: string, json: ModelJson, plan: WeightPlan, o: { maxHeapMb: number }): Promise<StoredModel> {
  await writeFile(join(dir, 'model.json'), JSON.stringify(storedModelJson(json, plan)));
  await concatenate(plan.files, join(dir, 'weights.bin'));
  const answer = await checkModel(dir, o);
  if (!answer.ok) {
    if (answer.code === 'not_finite') {
      const at = plan.specs.find((s) => s.spec.name === answer.weight)?.pointer ?? '/modelJson/weightsManifest';
      throw new ModelRejected([
        problem(at, `weight ${JSON.stringify(answer.weight)} holds ${answer.value} at element ${answer.index}; expected finite numbers only`),
      ]);
    }
    if (answer.code === 'resource_exhausted') throw new ModelRejected([problem('/modelJson/modelTopology', answer.message)]);
    if (answer.code === 'weights_mismatch') {
      throw new ModelRejected([problem('/modelJson/weightsManifest', `does not match the layers of modelTopology: ${answer.message}`)]);
    }
    throw new ModelRejected([problem('/modelJson/modelTopology', `does not build a model with TensorFlow.js: ${answer.message}`)]);
  }
  const { inputs, outputs } = answer;
  const output = outputs[0];
  if (inputs.length !== 1 || outputs.length !== 1 || !output || output.length !== 2 || !output[1]) {
    const shapes = (list: Array<Array<number | null>>) => list.map((s) => `[${s.map((d) => d ?? '?').join(', ')}]`).join(', ');
    throw new ModelRejected([
      problem(
        '/modelJson/modelTopology',
        `has inputs ${shapes(inputs)} and outputs ${shapes(outputs)}; expected a classifier with one input and one output of shape [?, classes]`,
      ),
    ]);
  }
  const input = inputs[0].slice(1);
  return { inputShape: input.every((d) => typeof d === 'number') ? input : null, numClasses: output[1] };
}
