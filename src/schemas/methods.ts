/**
 * Fine-tuning strategies (`strategy`, finetune jobs) and domain-adaptation methods (`method`,
 * domain_adaptation jobs). Each is one object with a `kind` and the parameters of every kind,
 * all optional; the tables in params.ts say which parameters belong to which kind, and the API
 * rejects the others with a pointer (a union of per-kind objects would answer a typo with one
 * complaint per kind). Adding a method: its kind and parameters here and in params.ts, its pure part in
 * src/jobs/methods/ and its tfjs part in workers/training/methods/ (docs/methods.md).
 */
import { Type, type Static } from '@sinclair/typebox';
import { METHOD_PARAMS, STRATEGY_PARAMS, type MethodKind, type StrategyKind } from './params.js';

/** The small network a new head may have between the feature layer and the logits. */
export const HeadSpec = Type.Object(
  {
    hidden: Type.Optional(
      Type.Array(Type.Integer({ minimum: 1, maximum: 4096 }), {
        maxItems: 4,
        description: 'units of each hidden dense layer (ReLU) between the features and the logits; default none',
      }),
    ),
    dropout: Type.Optional(
      Type.Number({ minimum: 0, exclusiveMaximum: 1, description: 'dropout rate in front of every dense layer of the head (training only); default 0, none' }),
    ),
  },
  { additionalProperties: false, description: "newHead only: the new head's layers, named head_dense_1, ..., head_dropout_1, ..., then the logits" },
);
export type HeadSpec = Static<typeof HeadSpec>;

export const Strategy = Type.Object(
  {
    kind: Type.Union(
      (Object.keys(STRATEGY_PARAMS) as StrategyKind[]).map((k) => Type.Literal(k)),
      {
        description:
          '`full`: train every weight. `freeze`: train only the layers from `trainFrom` on, or the last `trainableLayers` layers that have weights ' +
          '(default: the head, new or not); frozen layers also run in inference mode, so their batch-norm statistics are neither used from the batch nor updated. ' +
          'When the frozen part gives the same outputs every epoch (no augmentation, no dropout before it), its outputs are computed once per base, dataset and cut, ' +
          "kept as a feature cache, and epochs only run the trained layers (the job's `result.featureCache` says whether it was built, reused or unused, and why). " +
          "`l2sp`: train every weight with the L2-SP penalty of Li et al. 2018 (the seed's fine-tuning objective)",
      },
    ),
    newHead: Type.Optional(
      Type.Boolean({
        description:
          'replace the output layer (or, with `featureLayer`, every layer after that one) by a new, randomly initialised head with one output per class of `data.train`; ' +
          "required when the class count differs from the base model's",
      }),
    ),
    featureLayer: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 200,
        description:
          "newHead only: name of the base model's layer whose output feeds the new head; every layer after it is removed (its output is flattened when it is not flat). " +
          "Default: the layer feeding the output layer. An unknown name is a 400 listing the model's layers",
      }),
    ),
    head: Type.Optional(HeadSpec),
    trainableLayers: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 1000,
        description: "freeze only: how many of the last layers with weights are trained; default the new head's layers, else 1",
      }),
    ),
    trainFrom: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 200,
        description: "freeze only: name of the first layer to train; every layer before it (in the model's layer order) is frozen. Not with trainableLayers",
      }),
    ),
    alpha: Type.Optional(
      Type.Number({
        minimum: 0,
        maximum: 1e9,
        description:
          "l2sp only: the penalty alpha/2 * ||w_s - w0_s||^2 on the weights taken from the base model (w0_s). The seed's lambda is 1/alpha. Default 0.01",
      }),
    ),
    beta: Type.Optional(
      Type.Number({ minimum: 0, maximum: 1e9, description: 'l2sp only: the penalty beta/2 * ||w_h||^2 on new layers (a new head). Default 0.01' }),
    ),
  },
  { additionalProperties: false, description: 'finetune only; default `{ "kind": "full" }`' },
);
export type Strategy = Static<typeof Strategy>;

export const AdaptationMethod = Type.Object(
  {
    kind: Type.Union(
      (Object.keys(METHOD_PARAMS) as MethodKind[]).map((k) => Type.Literal(k)),
      {
        description:
          "`multi_source`: the seed's objective sum_d 1/2 ||w - w0_d||^2 + lambda/n sum_i L over `model.bases`, starting from their mean. " +
          '`dann`: domain-adversarial training (Ganin et al. 2016): a domain classifier on the features behind a gradient-reversal layer. ' +
          '`coral`: Deep CORAL (Sun & Saenko 2016): the distance between source and target feature covariances. ' +
          '`mmd`: multi-kernel Gaussian MMD between source and target features (DAN, Long et al. 2015). ' +
          '`adabn`: batch-norm statistics recomputed on the target domain after training (Li et al. 2016). ' +
          '`pseudo_label`: self-training on target examples predicted with confidence >= `threshold`. ' +
          "`cdan`: conditional adversarial adaptation (CDAN+E, Long et al. 2018): DANN's domain classifier on the multilinear map of features and predictions, examples weighted by 1 + e^-entropy. " +
          "`mcc`: Minimum Class Confusion (Jin et al. 2020): the off-diagonal mass of the target predictions' class-correlation matrix",
      },
    ),
    lambda: Type.Optional(
      Type.Number({
        exclusiveMinimum: 0,
        maximum: 1e9,
        description: "multi_source only: the seed's lambda, the weight of the data term against the pull toward the bases. Default 100",
      }),
    ),
    weight: Type.Optional(
      Type.Number({
        minimum: 0,
        maximum: 1e6,
        description: "dann, coral, mmd, pseudo_label, cdan, mcc: weight of the method's loss term next to the task loss. Default 1",
      }),
    ),
    featureLayer: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 200,
        description: 'dann, coral, mmd, cdan: name of the layer whose output is aligned across domains. Default: the layer before the head',
      }),
    ),
    gamma: Type.Optional(
      Type.Number({
        exclusiveMinimum: 0,
        maximum: 1000,
        description: 'dann, cdan: steepness of the reversal schedule lambda_p = 2 / (1 + exp(-gamma p)) - 1, p the share of training done. Default 10',
      }),
    ),
    hiddenUnits: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 4096, description: "dann, cdan: units of the domain classifier's hidden layer. Default 100" }),
    ),
    kernels: Type.Optional(Type.Integer({ minimum: 1, maximum: 16, description: 'mmd only: number of Gaussian kernels. Default 5' })),
    kernelMultiplier: Type.Optional(
      Type.Number({
        exclusiveMinimum: 1,
        maximum: 100,
        description: 'mmd only: ratio between successive kernel bandwidths, centred on the mean pairwise squared distance. Default 2',
      }),
    ),
    threshold: Type.Optional(
      Type.Number({
        exclusiveMinimum: 0,
        maximum: 1,
        description: 'pseudo_label only: the softmax confidence a target prediction needs to be used as a label. Default 0.9',
      }),
    ),
    entropyConditioning: Type.Optional(
      Type.Boolean({
        description: "cdan only: weight each example's domain loss by 1 + e^-H of its prediction (CDAN+E); false gives plain CDAN. Default true",
      }),
    ),
    temperature: Type.Optional(
      Type.Number({
        exclusiveMinimum: 0,
        maximum: 100,
        description: "mcc only: the softmax temperature of the target predictions. Default 2.5, the authors' choice for domain adaptation",
      }),
    ),
  },
  { additionalProperties: false, description: 'domain_adaptation only: how the model is adapted to the target domain' },
);
export type AdaptationMethod = Static<typeof AdaptationMethod>;
