/**
 * One instant, every spelling, every edge (docs/time.md): RFC 3339 with Z or an offset and
 * up to 9 fraction digits, epoch seconds, milliseconds and µs as text with digits past the
 * µs, and JSON numbers. The grammar (protocol/time.ts), a pushed batch's ts (NDJSON text and
 * number), the REST `at` parameter and the session `pos` control must all read the same µs:
 * digits past the µs dropped, never rounded, exact up to 2^53 - 1 µs (epoch seconds past
 * 2^33, year 2242, have no double for every µs). Seeded: AUDIT11_TIME_SEED replays a run.
 */
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePos } from '../protocol/controls.js';
import { epochNumber, formatTs, parseTimeExpr, parseTs } from '../protocol/time.js';
import { TS_MAX_US } from '../protocol/value.js';
import { recordingServer } from './helpers/recording-server.js';
import { scheduleSeed } from './helpers/seed.js';
import { rng } from './helpers/workload.js';

const seed = scheduleSeed('AUDIT11_TIME_SEED', 'audit11 time spellings');
const r = rng(seed);
const int = (n: number): number => Math.floor(r() * n);
const digits = (n: number): string => Array.from({ length: n }, () => String(int(10))).join('');
const pad = (n: number, w: number): string => String(n).padStart(w, '0');

/** Instants in runs of consecutive µs (a rounded reading lands on the neighbour), across the range and at its edges. */
function instants(): number[] {
  const starts = [0, 1e14 - 2, 2 ** 33 * 1e6, 9e15, TS_MAX_US - 3];
  for (let i = 0; i < 25; i++) starts.push(int(TS_MAX_US - 3));
  const all = new Set<number>();
  for (const s of starts) for (let k = 0; k < 3; k++) all.add(Math.min(s + k, TS_MAX_US));
  return [...all].sort((a, b) => a - b);
}

/** Text spellings of `us`, each read back as `us` exactly. */
function spellings(us: number): string[] {
  const s = Math.floor(us / 1e6);
  const f = us - s * 1e6;
  const out = [formatTs(us), formatTs(us).replace('Z', `${digits(3)}Z`), `${s}.${pad(f, 6)}${digits(1 + int(6))}`];
  if (f === 0) out.push(String(s));
  // An offset: the same instant as wall time elsewhere.
  const offMin = (int(2) === 0 ? -1 : 1) * int(14 * 60);
  const local = new Date(Math.floor(us / 1000) + offMin * 60_000).toISOString().slice(0, 19);
  const sign = offMin < 0 ? '-' : '+';
  out.push(`${local}.${pad(f, 6)}${digits(int(4))}${sign}${pad(Math.floor(Math.abs(offMin) / 60), 2)}:${pad(Math.abs(offMin) % 60, 2)}`);
  // Milliseconds and µs only where their magnitude reads as that unit (from 1e11 ms, 1e14 µs).
  if (us >= 1e14) out.push(`${Math.floor(us / 1000)}.${pad(us % 1000, 3)}${digits(1 + int(5))}`, String(us), `${us}.${digits(1 + int(3))}`);
  return out;
}

describe('one instant, every spelling', () => {
  it('the grammar reads every spelling as the instant, to the µs', () => {
    for (const us of instants()) {
      for (const text of spellings(us)) {
        expect(parseTs(text), text).toBe(us);
        expect(parseTimeExpr(text), text).toStrictEqual({ ok: true, value: { kind: 'abs', us } });
        expect(parsePos(text, 0), text).toStrictEqual({ kind: 'ts', us });
      }
    }
  });

  it('a JSON number is the instant its text is, at every edge that takes one', () => {
    for (const us of instants()) {
      for (const n of [us / 1e6, us / 1e3, us, Math.floor(us / 1e6) + 0.5]) {
        const text = String(n);
        const asText = parseTimeExpr(text);
        const asNumber = epochNumber(n);
        if (!asText.ok) {
          expect(asNumber.ok, text).toBe(false);
          continue;
        }
        expect(asNumber, text).toStrictEqual({ ok: true, value: (asText.value as { us: number }).us });
        expect(parsePos(n, 0), text).toStrictEqual(parsePos(text, 0));
      }
    }
    // Exponent forms are no epoch spelling: refused alike as text and as numbers.
    for (const n of [1e-7, 5e-7, 1e21, 1e300]) {
      expect(epochNumber(n).ok, String(n)).toBe(false);
      expect(parseTimeExpr(n).ok, String(n)).toBe(false);
    }
  });

  describe('through a recording server', () => {
    let srv: Awaited<ReturnType<typeof recordingServer>>;
    beforeAll(async () => {
      srv = await recordingServer();
    });
    afterAll(async () => {
      await srv.close();
    });

    async function get(path: string): Promise<{ status: number; text: string }> {
      const res = await request(`${srv.url}${path}`);
      return { status: res.statusCode, text: await res.body.text() };
    }

    it('a pushed ts in any spelling is recorded at the instant, and `at` in any spelling reads the state there', async () => {
      const list = instants();
      const lines: string[] = [];
      const used: string[] = [];
      list.forEach((us, i) => {
        const forms = spellings(us);
        const form = forms[int(forms.length)] as string;
        used.push(form);
        // Every fourth batch sends an exact JSON number (µs) instead of text.
        const ts = i % 4 === 3 && us >= 1e14 ? String(us) : JSON.stringify(form);
        lines.push(`{"ts":${ts},"updates":{"/t/${i}":${i}}}`);
      });
      const res = await request(`${srv.url}/api/v1/ingest?ack=durable`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: `${lines.join('\n')}\n` });
      const answer = await res.body.text();
      expect(res.statusCode, answer).toBe(200);
      const history = await get(`/api/v1/history?glob=/t/**&from=0&to=${TS_MAX_US}`);
      expect(history.status, history.text).toBe(200);
      const recorded = new Map<string, number>();
      for (const line of history.text.split('\n').filter((l) => l !== '')) {
        const row = JSON.parse(line) as { ts: number; updates: Record<string, number> };
        for (const path of Object.keys(row.updates)) recorded.set(path, row.ts);
      }
      list.forEach((us, i) => expect(recorded.get(`/t/${i}`), `${used[i]}`).toBe(us));
      // The state at each instant, asked in another spelling, is the state of its batch.
      for (const us of list) {
        const forms = spellings(us);
        const at = forms[int(forms.length)] as string;
        const state = await get(`/api/v1/state?glob=/t/**&at=${encodeURIComponent(at)}`);
        expect(state.status, state.text).toBe(200);
        expect((JSON.parse(state.text) as { ts: number }).ts, at).toBe(us);
      }
    });

    it('a time that is no instant is refused with TPD_BAD_ARGUMENT at the push and at `at` alike', async () => {
      for (const bad of ['2024-12-31T23:59:60Z', '2024-02-30T00:00:00Z', '1969-12-31T23:59:59.999999Z', String(TS_MAX_US + 1), '9007199254.740992', '1e-7']) {
        const res = await request(`${srv.url}/api/v1/ingest`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: `{"ts":${JSON.stringify(bad)},"updates":{"/bad":1}}\n` });
        const push = (await res.body.json()) as { rejected: Array<{ code: string }> };
        expect(res.statusCode, bad).toBe(400);
        expect(push.rejected[0]?.code, bad).toBe('TPD_BAD_ARGUMENT');
        const at = await get(`/api/v1/state?at=${encodeURIComponent(bad)}`);
        expect(at.status, bad).toBe(400);
        expect((JSON.parse(at.text) as { error: { code: string } }).error.code, bad).toBe('TPD_BAD_ARGUMENT');
      }
      for (const n of [1e-7, 1e21, -1]) {
        const res = await request(`${srv.url}/api/v1/ingest`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: `{"ts":${n},"updates":{"/bad":1}}\n` });
        const push = (await res.body.json()) as { rejected: Array<{ code: string }> };
        expect(push.rejected[0]?.code, String(n)).toBe('TPD_BAD_ARGUMENT');
      }
    });
  });
});
