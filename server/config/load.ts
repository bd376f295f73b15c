/** Reading a config file: JSON with `//` line comments, then resolved. */
import { readFile } from 'node:fs/promises';
import { TapedeckError } from '../../protocol/errors.js';
import { resolveConfig } from './resolve.js';
import type { ServeConfig } from './serve-config.js';

/** JSON with `//` line comments (outside strings) allowed. */
export function stripComments(text: string): string {
  let out = '';
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (inString) {
      out += c;
      if (c === '\\') out += text[++i] ?? '';
      else if (c === '"') inString = false;
    } else if (c === '"') {
      inString = true;
      out += c;
    } else if (c === '/' && text[i + 1] === '/') {
      while (i < text.length && text[i] !== '\n') i++;
      out += '\n';
    } else {
      out += c;
    }
  }
  return out;
}

/** Reads, parses and resolves a config file. */
export async function loadConfig(file: string): Promise<ServeConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new TapedeckError('TPD_BAD_CONFIG', `cannot read config ${file}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(stripComments(text));
  } catch (err) {
    throw new TapedeckError('TPD_BAD_CONFIG', `config ${file} is not valid JSON: ${(err as Error).message}`);
  }
  return resolveConfig(doc, `config ${file}`);
}
