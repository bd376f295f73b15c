/**
 * MSB-first bit writer and bounds-checked bit reader over bytes, for the bit-packed column
 * kinds (docs/format.md). Pure; at most 32 bits per call so everything stays in int32 math.
 */
import type { ByteReader, ByteWriter } from './bytes.js';

export class BitWriter {
  private cur = 0;
  private fill = 0;

  constructor(public out: ByteWriter) {}

  /** Starts a new bit run at `out`'s current byte position. */
  reset(out: ByteWriter = this.out): void {
    this.out = out;
    this.cur = 0;
    this.fill = 0;
  }

  /** Writes the low `n` bits of `v` (0 <= n <= 32), most significant first. */
  write(v: number, n: number): void {
    const out = this.out;
    out.ensure(5);
    while (n > 0) {
      const free = 8 - this.fill;
      if (n >= free) {
        n -= free;
        out.buf[out.pos++] = this.cur | ((v >>> n) & ((1 << free) - 1));
        this.cur = 0;
        this.fill = 0;
      } else {
        this.cur |= (v & ((1 << n) - 1)) << (free - n);
        this.fill += n;
        n = 0;
      }
    }
  }

  bit(b: number): void {
    this.cur |= b << (7 - this.fill);
    if (++this.fill === 8) {
      this.out.u8(this.cur);
      this.cur = 0;
      this.fill = 0;
    }
  }

  /** Pads the last byte with zero bits. */
  flush(): void {
    if (this.fill > 0) {
      this.out.u8(this.cur);
      this.cur = 0;
      this.fill = 0;
    }
  }
}

export class BitReader {
  private r!: ByteReader;
  private end = 0;
  private cur = 0;
  private avail = 0;

  /** Reads the `bytes` bytes at r.pos; r.pos moves past them once `finish` checks them. */
  start(r: ByteReader, bytes: number): void {
    if (bytes < 0 || r.pos + bytes > r.end) r.fail('truncated bit column');
    this.r = r;
    this.end = r.pos + bytes;
    this.cur = 0;
    this.avail = 0;
  }

  /** Reads `n` bits (0 <= n <= 32) as an unsigned number. */
  read(n: number): number {
    let v = 0;
    while (n > 0) {
      if (this.avail === 0) this.next();
      const take = n < this.avail ? n : this.avail;
      this.avail -= take;
      v = v * (1 << take) + ((this.cur >>> this.avail) & ((1 << take) - 1));
      n -= take;
    }
    return v;
  }

  bit(): number {
    if (this.avail === 0) this.next();
    this.avail--;
    return (this.cur >>> this.avail) & 1;
  }

  /** All bytes used, only zero padding left over. */
  finish(): void {
    const r = this.r;
    if (r.pos !== this.end) r.fail('bit column longer than its values');
    if ((this.cur & ((1 << this.avail) - 1)) !== 0) r.fail('bit column padding is not zero');
  }

  private next(): void {
    const r = this.r;
    if (r.pos >= this.end) r.fail('bit column shorter than its values');
    this.cur = r.buf[r.pos++] as number;
    this.avail = 8;
  }
}
