/**
 * The Keras MobileNetV2 LayersModel that the nsfwjs package ships (224x224x3 in, 5 classes, 266
 * uint8-quantized weights), materialised as the files a user would upload: model.json and its
 * weights cut into several shards as tfjs-converter writes them. nsfwjs embeds both as UMD
 * modules (dist/models/mobilenet_v2/model.min.js exports the model.json object,
 * group1-shard1of1.min.js the shard as base64), so nothing is fetched from the network.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
// The package's exports map leaves dist/models/ out, so its files are reached from the entry's path.
const MODELS = join(dirname(require.resolve('nsfwjs')), '..', 'models', 'mobilenet_v2');

export interface MaterialisedModel {
  /** model.json's object, its manifest naming the shards */
  modelJson: { modelTopology: any; weightsManifest: Array<{ paths: string[]; weights: any[] }>; [k: string]: unknown };
  /** the shards in manifest order */
  shards: Array<{ filename: string; content: Buffer }>;
}

/** The nsfwjs MobileNetV2 with its weights in `shards` files (tfjs-converter's group1-shardNofM names). */
export function nsfwMobileNetV2(shards = 4): MaterialisedModel {
  const json = structuredClone(require(join(MODELS, 'model.min.js'))) as MaterialisedModel['modelJson'];
  const weights = Buffer.from(require(join(MODELS, 'group1-shard1of1.min.js')) as string, 'base64');
  const size = Math.ceil(weights.length / shards);
  const files = Array.from({ length: shards }, (_, i) => ({
    filename: `group1-shard${i + 1}of${shards}.bin`,
    content: weights.subarray(i * size, (i + 1) * size),
  }));
  json.weightsManifest = [{ paths: files.map((f) => f.filename), weights: json.weightsManifest.flatMap((g) => g.weights) }];
  return { modelJson: json, shards: files };
}

/** Writes `model` into `dir` as model.json and its shards, as a directory served over HTTP or uploaded by curl. */
export async function writeModelFiles(model: MaterialisedModel, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'model.json'), JSON.stringify(model.modelJson));
  for (const s of model.shards) await writeFile(join(dir, s.filename), s.content);
}
