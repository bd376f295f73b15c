/**
 * Remote-write bodies built straight into a Buffer, for loading millions of samples into a
 * real Prometheus quickly (test/helpers/promql-peers.ts builds them through number arrays:
 * right for tests, minutes of CPU for the 57.6 M samples of the PromQL benchmark). The same
 * bytes: a WriteRequest (remote write 1.0 protobuf) in snappy's block format with literal
 * elements only.
 */

function varintBytes(n: number): number {
  let len = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    len++;
  }
  return len;
}

function writeVarint(buf: Buffer, pos: number, n: number): number {
  while (n >= 0x80) {
    buf[pos++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[pos++] = n;
  return pos;
}

function field(tag: number, body: Buffer): Buffer {
  const head = Buffer.alloc(1 + varintBytes(body.length));
  head[0] = tag;
  writeVarint(head, 1, body.length);
  return Buffer.concat([head, body]);
}

/** The labels of a TimeSeries (field 1, repeated Label{name = 1, value = 2}), sorted by name: encoded once per series. */
export function encodeLabels(labels: Record<string, string>): Buffer {
  const out: Buffer[] = [];
  for (const name of Object.keys(labels).sort()) {
    out.push(field(0x0a, Buffer.concat([field(0x0a, Buffer.from(name)), field(0x12, Buffer.from(labels[name] as string))])));
  }
  return Buffer.concat(out);
}

/** A snappy-framed WriteRequest: for each series, its encoded labels and samples k in [k0, k1) at (tsMs(k), value(i, k)). */
export function writeRequestBody(labels: readonly Buffer[], k0: number, k1: number, tsMs: (k: number) => number, value: (i: number, k: number) => number): Buffer {
  const sampleBytes = (k: number): number => 1 + 8 + 1 + varintBytes(tsMs(k));
  let samplesBytes = 0;
  for (let k = k0; k < k1; k++) samplesBytes += 2 + sampleBytes(k);
  let total = 0;
  for (const l of labels) {
    const ts = l.length + samplesBytes;
    total += 1 + varintBytes(ts) + ts;
  }
  const pb = Buffer.alloc(total);
  let pos = 0;
  labels.forEach((l, i) => {
    pb[pos++] = 0x0a;
    pos = writeVarint(pb, pos, l.length + samplesBytes);
    pos += l.copy(pb, pos);
    for (let k = k0; k < k1; k++) {
      pb[pos++] = 0x12;
      pb[pos++] = sampleBytes(k);
      pb[pos++] = 0x09;
      pb.writeDoubleLE(value(i, k), pos);
      pos += 8;
      pb[pos++] = 0x10;
      pos = writeVarint(pb, pos, tsMs(k));
    }
  });
  return snappyLiteral(pb);
}

function snappyLiteral(data: Buffer): Buffer {
  const chunkMax = 65536;
  const chunks = Math.ceil(data.length / chunkMax);
  const out = Buffer.alloc(varintBytes(data.length) + chunks * 3 + data.length);
  let pos = writeVarint(out, 0, data.length);
  for (let off = 0; off < data.length; off += chunkMax) {
    const n = Math.min(chunkMax, data.length - off);
    out[pos++] = 61 << 2; // literal with a 2-byte length (n - 1)
    out[pos++] = (n - 1) & 0xff;
    out[pos++] = ((n - 1) >> 8) & 0xff;
    pos += data.copy(out, pos, off, off + n);
  }
  return out;
}

export async function postWrite(url: string, body: Buffer): Promise<void> {
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-protobuf', 'content-encoding': 'snappy', 'x-prometheus-remote-write-version': '0.1.0' },
    body,
  });
  if (r.status >= 300) throw new Error(`remote write to ${url}: ${r.status} ${await r.text()}`);
}
