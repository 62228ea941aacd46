import { readdirSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import type { ServiceManifest } from './manifest';
import { parseManifest } from './manifest-parser';

/** Thrown when SERVICES_DIR holds a bad manifest; lists every problem of every file. */
export class ManifestError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid service manifests:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ManifestError';
  }
}

const MANIFEST_FILE = /\.ya?ml$/i;

/** Every `*.yaml`/`*.yml` under `dir`, recursively, in a stable order; skips node_modules and dot folders. */
export function findManifestFiles(dir: string): string[] {
  const found: string[] = [];
  const walk = (folder: string) => {
    const entries = readdirSync(folder, { withFileTypes: true }).sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
    );
    for (const entry of entries) {
      const path = join(folder, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules' && !entry.name.startsWith('.')) {
          walk(path);
        }
      } else if (entry.isFile() && MANIFEST_FILE.test(entry.name)) {
        found.push(path);
      }
    }
  };
  walk(dir);
  return found;
}

/** A path as an operator would type it: relative to the working directory when inside it. */
function shown(file: string): string {
  const rel = relative(process.cwd(), file);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : file;
}

function readManifestFile(file: string): { manifest?: ServiceManifest; problems: string[] } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return { problems: [`cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`] };
  }
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    return { problems: doc.errors.map((e) => `is not valid YAML: ${e.message.split('\n')[0]}`) };
  }
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    return { problems: [`is not valid YAML: ${(err as Error).message}`] };
  }
  if (raw === null || raw === undefined) {
    return { problems: ['is empty: one service manifest per file'] };
  }
  return parseManifest(raw, file);
}

/**
 * Loads and validates every manifest under `dir` (one service per file). Throws a
 * ManifestError naming each bad file and field, so that a bad manifest stops the boot.
 */
export function loadManifests(dir: string): ServiceManifest[] {
  const root = resolve(dir);
  let isDir = false;
  try {
    isDir = statSync(root).isDirectory();
  } catch {
    // reported below
  }
  if (!isDir) {
    throw new ManifestError([`SERVICES_DIR ${root} is not a directory`]);
  }
  const problems: string[] = [];
  const manifests: ServiceManifest[] = [];
  const declaredIn = new Map<string, string>();
  for (const file of findManifestFiles(root)) {
    const result = readManifestFile(file);
    problems.push(...result.problems.map((p) => `${shown(file)}: ${p}`));
    const manifest = result.manifest;
    if (!manifest) {
      continue;
    }
    const other = declaredIn.get(manifest.key);
    if (other) {
      problems.push(
        `${shown(file)}: key: "${manifest.key}" is already declared in ${shown(other)}`,
      );
      continue;
    }
    declaredIn.set(manifest.key, file);
    manifests.push(manifest);
  }
  if (problems.length > 0) {
    throw new ManifestError(problems);
  }
  return manifests.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}
