/**
 * The sections of docs/benchmarks.md that other benches own (bench:transfer, bench:sweeps): each
 * between its markers, rewritten in place by its bench and kept as it stands when bench:quality
 * rewrites the rest of the file.
 */
import { readFile, writeFile } from 'node:fs/promises';

export const SECTIONS = ['transfer', 'sweeps'] as const;
export type Section = (typeof SECTIONS)[number];

export const markers = (name: Section) => ({ start: `<!-- bench:${name} start -->`, end: `<!-- bench:${name} end -->` });

/** Each owned section found in `text`, markers included, in the order of SECTIONS. */
export function ownedSections(text: string): string[] {
  return SECTIONS.flatMap((name) => {
    const { start, end } = markers(name);
    const [from, to] = [text.indexOf(start), text.indexOf(end)];
    return from >= 0 && to > from ? [text.slice(from, to + end.length)] : [];
  });
}

/** Writes `body` as section `name` of the file `out`: in place of the old one, or appended. */
export async function writeSection(out: string, name: Section, body: string): Promise<void> {
  const { start, end } = markers(name);
  const section = `${start}\n${body.trim()}\n${end}`;
  const existing = await readFile(out, 'utf8').catch(() => '');
  const [from, to] = [existing.indexOf(start), existing.indexOf(end)];
  await writeFile(out, from >= 0 && to > from ? existing.slice(0, from) + section + existing.slice(to + end.length) : `${existing.trimEnd()}\n\n${section}\n`);
}
