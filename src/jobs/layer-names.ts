/**
 * The layer names of a stored LayersModel, read from its model.json topology without tfjs (the
 * API never imports it), in the order of the topology's layer list: both the tfjs/Keras
 * functional layout (`config.layers`) and the Sequential one, wrapped in Keras's `model_config`
 * or not. Pure: the caller reads the file.
 */
type LayerJson = { name?: unknown; config?: { name?: unknown } };

export function layerNames(modelJson: unknown): string[] | undefined {
  const topology = (modelJson as { modelTopology?: Record<string, unknown> } | null)?.modelTopology;
  if (topology === null || typeof topology !== 'object') return undefined;
  const model = (topology.model_config ?? topology) as { config?: unknown };
  const config = model.config as { layers?: unknown } | unknown[] | undefined;
  const layers = Array.isArray(config) ? config : config?.layers;
  if (!Array.isArray(layers)) return undefined;
  const names = (layers as LayerJson[]).map((l) => l?.name ?? l?.config?.name);
  return names.every((n): n is string => typeof n === 'string') ? names : undefined;
}
