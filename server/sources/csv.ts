/**
 * A small RFC 4180 CSV reader: comma-separated fields, optional double quotes (a doubled
 * quote inside quotes is one quote), CRLF or LF line ends, an optional final newline.
 * Pure; throws CsvError naming the line of a malformed record.
 */
import { PROTOCOL_LIMITS } from '../../protocol/limits.js';

export class CsvError extends Error {
  override readonly name = 'CsvError';
}

export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let line = 1;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (quoted) {
      if (c === 34 /* " */) {
        if (text.charCodeAt(i + 1) === 34) {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
        i++;
        const next = text.charCodeAt(i);
        if (i < n && next !== 44 && next !== 10 && next !== 13) throw new CsvError(`line ${line}: text after a closing quote`);
        continue;
      }
      if (c === 10) line++;
      field += text[i];
      i++;
      continue;
    }
    if (c === 34) {
      if (field.length > 0) throw new CsvError(`line ${line}: quote inside an unquoted field`);
      quoted = true;
      i++;
    } else if (c === 44 /* , */) {
      row.push(field);
      field = '';
      i++;
    } else if (c === 10 || c === 13) {
      row.push(field);
      field = '';
      rows.push(row);
      row = [];
      i += c === 13 && text.charCodeAt(i + 1) === 10 ? 2 : 1;
      line++;
    } else {
      // Take the run of plain characters at once.
      let j = i + 1;
      while (j < n) {
        const d = text.charCodeAt(j);
        if (d === 44 || d === 10 || d === 13 || d === 34) break;
        j++;
      }
      field += text.slice(i, j);
      i = j;
    }
  }
  if (quoted) throw new CsvError(`line ${line}: unterminated quoted field`);
  if (field.length > 0 || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/**
 * A cell as a typed value: numbers become numbers, an empty cell null, anything else stays
 * text. An integer a double does not hold (a 64-bit counter) is the exact bigint, not the
 * nearest double; a number past the largest double (`1e400`) or an integer past
 * bigintDigitsMax stays its text, not Infinity or a rounded double.
 */
export function cellValue(cell: string): number | bigint | string | null {
  const s = cell.trim();
  if (s.length === 0) return null;
  if (!NUMBER.test(s)) return cell;
  const n = Number(s);
  if (!Number.isFinite(n)) return cell;
  if (Number.isSafeInteger(n) || !INTEGER.test(s)) return n;
  // Past bigintDigitsMax: its text, like a number past the largest double.
  if (s.replace(/^[+-]/, '').length > PROTOCOL_LIMITS.bigintDigitsMax) return cell;
  const b = BigInt(s);
  return BigInt(n) === b ? n : b;
}

const INTEGER = /^[+-]?\d+$/;
