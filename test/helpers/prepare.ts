/**
 * Run by `npm test` once, before the test files: makes the migrated PGlite template every file
 * copies (data-dir.ts). On a machine without it, the files node --test starts together would each
 * run initdb for the same template (~8 s of CPU each, only one copy kept); made here, it costs one.
 */
import { pgliteTemplate } from './data-dir.js';

await pgliteTemplate();
