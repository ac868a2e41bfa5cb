/**
 * Turns the labels of an upload into class indices. Labels are read once, so each gets a
 * provisional index on first sight; the final class order is only known at the end:
 * - declared `classes`: that order, and an undeclared label is an error;
 * - every label a non-negative integer written plainly (0, 7, 12): classes "0".."max", so that
 *   label n is class n, as users of MNIST-like data expect;
 * - otherwise: the distinct labels sorted, digits compared as numbers ("2" before "10").
 */
export const MAX_CLASSES = 10_000;

const PLAIN_INTEGER = /^(0|[1-9][0-9]{0,8})$/;
const collator = new Intl.Collator('en', { numeric: true });

export class LabelSet {
  private readonly provisional = new Map<string, number>();
  private readonly declared?: Map<string, number>;

  /** `integerClasses: false` always sorts names, for labels that are names (class folders). */
  constructor(
    declared?: string[],
    private readonly integerClasses = true,
  ) {
    if (declared) this.declared = new Map(declared.map((c, i) => [c, i]));
  }

  /**
   * The provisional index of `label`, or a complaint: the label is not declared, or there are
   * too many distinct labels to be classes (a regression target, an id column).
   */
  index(label: string): number | { code: 'unknown_class' | 'too_many_classes'; message: string } {
    const known = this.provisional.get(label);
    if (known !== undefined) return known;
    if (this.declared && !this.declared.has(label)) {
      const names = [...this.declared.keys()].map((c) => JSON.stringify(c)).join(', ');
      return { code: 'unknown_class', message: `label ${JSON.stringify(label)} is not one of the declared classes (${names})` };
    }
    if (this.provisional.size >= MAX_CLASSES) {
      return {
        code: 'too_many_classes',
        message: `label ${JSON.stringify(label)} would be class number ${MAX_CLASSES + 1}; at most ${MAX_CLASSES} classes are allowed (is this really a class label?)`,
      };
    }
    const i = this.provisional.size;
    this.provisional.set(label, i);
    return i;
  }

  /** The final classes and, per provisional index, the final index. */
  finish(): { classes: string[]; mapping: Int32Array } {
    const seen = [...this.provisional.keys()];
    let classes: string[];
    let finalIndex: (label: string) => number;
    if (this.declared) {
      classes = [...this.declared.keys()];
      finalIndex = (l) => this.declared!.get(l)!;
    } else if (this.integerClasses && seen.length > 0 && seen.every((l) => PLAIN_INTEGER.test(l)) && Math.max(...seen.map(Number)) < MAX_CLASSES) {
      const max = Math.max(...seen.map(Number));
      classes = Array.from({ length: max + 1 }, (_, i) => String(i));
      finalIndex = Number;
    } else {
      classes = [...seen].sort(collator.compare);
      const order = new Map(classes.map((c, i) => [c, i]));
      finalIndex = (l) => order.get(l)!;
    }
    const mapping = new Int32Array(seen.length);
    seen.forEach((l, i) => (mapping[i] = finalIndex(l)));
    return { classes, mapping };
  }

  /** How the labels were read, for the message about a class without examples. */
  get isDeclared(): boolean {
    return this.declared !== undefined;
  }
}

/**
 * An upload must give every class an example: a class nothing belongs to is almost always a
 * typo or a gap in integer labels, and would silently shift what the model's outputs mean.
 */
export function emptyClassProblem(classes: string[], counts: number[], declared: boolean): { class: string; message: string } | undefined {
  const i = counts.findIndex((c) => c === 0);
  if (i < 0) return undefined;
  const name = classes[i];
  const message = declared
    ? `class ${JSON.stringify(name)} is declared in \`classes\` but no example has it; every class needs at least one example`
    : `class ${JSON.stringify(name)} has no examples: integer labels make classes 0..${classes.length - 1}, so every integer in between needs at least one example (renumber the labels, or declare \`classes\`)`;
  return { class: name, message };
}
