/**
 * What loading a Keras-converted base model changes in its topology before tfjs builds it.
 * Which layers train is the job's strategy's to say, not the exporter's: a Keras model saved with
 * frozen layers (`"trainable": false`, as the nsfwjs MobileNetV2 and most transfer-learning
 * exports are) would otherwise give tfjs layers without trainable weights, and `full` would
 * quietly train only the head.
 */
type LayerJson = { class_name?: string; config?: Record<string, unknown> | unknown[] };

/** Marks every layer of `topology` (nested models included) trainable; returns how many were not. */
export function thawLayers(topology: Record<string, unknown>): number {
  let thawed = 0;
  const visit = (config: unknown) => {
    const layers = Array.isArray(config) ? config : (config as { layers?: unknown } | null | undefined)?.layers;
    if (!Array.isArray(layers)) return;
    for (const layer of layers as LayerJson[]) {
      const own = layer?.config;
      if (own && !Array.isArray(own) && own.trainable === false) {
        own.trainable = true;
        thawed++;
      }
      visit(own);
    }
  };
  visit(((topology.model_config ?? topology) as { config?: unknown }).config);
  return thawed;
}
