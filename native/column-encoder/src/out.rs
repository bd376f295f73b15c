//! The output buffer: LEB128 varints (zigzag for signed) and an MSB-first bit packer, as
//! storage/codec/bytes.ts and bits.ts write them.

/// Bytes written so far; `reserve` is called with a bound before each column, so the
/// writes below index within capacity that `Vec` already holds.
pub struct Out {
    pub buf: Vec<u8>,
}

impl Out {
    pub fn new() -> Self {
        Out { buf: Vec::new() }
    }

    #[inline]
    pub fn u8(&mut self, b: u8) {
        self.buf.push(b);
    }

    #[inline]
    pub fn uvar(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    #[inline]
    pub fn svar(&mut self, v: i64) {
        self.uvar(zigzag(v));
    }
}

#[inline]
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// LEB128 length of `z` (columns.ts varintBytes).
#[inline]
pub fn varint_bytes(z: u64) -> u64 {
    // 1 + floor(bitlen / 7), with bitlen(0) counted as 1 bit.
    let bits = 64 - (z | 1).leading_zeros() as u64;
    (bits + 6) / 7
}

/// Bit length of `z` (0 for 0).
#[inline]
pub fn bit_length(z: u64) -> u32 {
    64 - z.leading_zeros()
}

/// MSB-first bits into `Out`, the last byte padded with zero bits (bits.ts BitWriter).
pub struct BitOut {
    acc: u64,
    fill: u32,
}

impl BitOut {
    pub fn new() -> Self {
        BitOut { acc: 0, fill: 0 }
    }

    /// The low `n` bits of `v`, 0 <= n <= 32.
    #[inline]
    pub fn write(&mut self, out: &mut Out, v: u64, n: u32) {
        if n == 0 {
            return;
        }
        self.acc = (self.acc << n) | (v & ((1u64 << n) - 1));
        self.fill += n;
        while self.fill >= 8 {
            self.fill -= 8;
            out.buf.push((self.acc >> self.fill) as u8);
        }
        self.acc &= (1u64 << self.fill) - 1;
    }

    /// The low `n` bits of `v`, 0 <= n <= 64.
    #[inline]
    pub fn write64(&mut self, out: &mut Out, v: u64, n: u32) {
        if n > 32 {
            self.write(out, v >> 32, n - 32);
            self.write(out, v, 32);
        } else {
            self.write(out, v, n);
        }
    }

    pub fn flush(&mut self, out: &mut Out) {
        if self.fill > 0 {
            out.buf.push((self.acc << (8 - self.fill)) as u8);
        }
        self.acc = 0;
        self.fill = 0;
    }
}
