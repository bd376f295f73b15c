//! The output buffer: LEB128 varints (zigzag for signed) and an MSB-first bit packer, as
//! storage/codec/bytes.ts and bits.ts write them.

/// A block's output. `reserve` sizes `buf` to a bound of everything the block can write
/// (lib.rs block_bound), so the writes below need no capacity check each.
pub struct Out {
    buf: Vec<u8>,
    pub pos: usize,
}

impl Out {
    pub fn new() -> Self {
        Out { buf: Vec::new(), pos: 0 }
    }

    /// Room for `bytes` from position 0 (the contents are not kept).
    pub fn reserve(&mut self, bytes: usize) {
        if self.buf.len() < bytes {
            self.buf = vec![0; bytes];
        }
        self.pos = 0;
    }

    pub fn ptr(&self) -> *const u8 {
        self.buf.as_ptr()
    }

    /// The first `len` bytes written.
    pub fn bytes(&self, len: usize) -> &[u8] {
        &self.buf[..len]
    }

    #[inline(always)]
    pub fn u8(&mut self, b: u8) {
        debug_assert!(self.pos < self.buf.len());
        // SAFETY: reserve() made room for the block's bound, which no column exceeds.
        unsafe { *self.buf.as_mut_ptr().add(self.pos) = b };
        self.pos += 1;
    }

    #[inline(always)]
    pub fn set(&mut self, at: usize, b: u8) {
        self.buf[at] = b;
    }

    /// LEB128 of v < 2^56 without a branch on its length (the bytes of varied lengths
    /// mispredict): its 7-bit groups spread to bytes, continuation bits on all but the
    /// last (a table by length), 8 bytes stored and the position moved by the length
    /// (block_bound keeps 8 bytes of slack past the last write).
    #[inline(always)]
    pub fn uvar(&mut self, v: u64) {
        debug_assert!(v < 1 << 56);
        let len = varint_bytes(v);
        if v < 1 << 28 {
            // At most 4 bytes (nearly every varint of a block: counts, ids, small
            // differences): four groups spread and 4 bytes stored.
            let mut x = (v & 0x7f) as u32;
            x |= ((v << 1) & 0x7f00) as u32;
            x |= ((v << 2) & 0x7f_0000) as u32;
            x |= ((v << 3) & 0x7f00_0000) as u32;
            x |= CONTINUATION[len as usize] as u32;
            debug_assert!(self.pos + 4 <= self.buf.len());
            // SAFETY: as below (4 of the 8 bytes of slack).
            unsafe { (self.buf.as_mut_ptr().add(self.pos) as *mut [u8; 4]).write_unaligned(x.to_le_bytes()) };
            self.pos += len as usize;
            return;
        }
        let mut x = v & 0x7f;
        x |= (v << 1) & 0x7f00;
        x |= (v << 2) & 0x7f_0000;
        x |= (v << 3) & 0x7f00_0000;
        x |= (v << 4) & 0x7f_0000_0000;
        x |= (v << 5) & 0x7f00_0000_0000;
        x |= (v << 6) & 0x7f_0000_0000_0000;
        x |= (v << 7) & 0x7f00_0000_0000_0000;
        x |= CONTINUATION[len as usize];
        debug_assert!(self.pos + 8 <= self.buf.len());
        // SAFETY: reserve() made room for the block's bound plus 8 bytes of slack.
        unsafe { (self.buf.as_mut_ptr().add(self.pos) as *mut [u8; 8]).write_unaligned(x.to_le_bytes()) };
        self.pos += len as usize;
    }

    /// Four bytes, most significant first.
    #[inline(always)]
    pub fn u32_be(&mut self, v: u32) {
        debug_assert!(self.pos + 4 <= self.buf.len());
        // SAFETY: as uvar.
        unsafe { (self.buf.as_mut_ptr().add(self.pos) as *mut [u8; 4]).write_unaligned(v.to_be_bytes()) };
        self.pos += 4;
    }

    #[inline(always)]
    pub fn svar(&mut self, v: i64) {
        self.uvar(zigzag(v));
    }

    pub fn f64_bits(&mut self, b: u64) {
        for x in b.to_le_bytes() {
            self.u8(x);
        }
    }
}

#[inline(always)]
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// LEB128 length of `z` (columns.ts varintBytes).
#[inline(always)]
pub fn varint_bytes(z: u64) -> u64 {
    // ceil(bitlen / 7), with bitlen(0) counted as 1 bit, by the count of leading zeros.
    VARINT_BYTES_BY_ZEROS[(z | 1).leading_zeros() as usize] as u64
}

/// varint_bytes by leading zeros (0..=63 of a nonzero u64).
const VARINT_BYTES_BY_ZEROS: [u8; 64] = {
    let mut t = [0u8; 64];
    let mut lz = 0;
    while lz < 64 {
        t[lz] = ((64 - lz + 6) / 7) as u8;
        lz += 1;
    }
    t
};

/// The continuation bits of a varint of `len` bytes (1..=8): the top bit of every byte but the last.
const CONTINUATION: [u64; 10] = {
    let mut t = [0u64; 10];
    let mut len = 1;
    while len <= 8 {
        t[len] = 0x8080_8080_8080_8080 & ((1u64 << (8 * (len - 1))) - 1);
        len += 1;
    }
    t
};

/// Bit length of `z` (0 for 0).
#[inline(always)]
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

    /// The low `n` bits of `v`, 0 <= n <= 32. Bits leave 32 at a time (fill stays below
    /// 32): one branch a value, taken every 32 / n values, not a loop over its bytes.
    #[inline(always)]
    pub fn write(&mut self, out: &mut Out, v: u64, n: u32) {
        self.acc = (self.acc << n) | (v & ((1u64 << n) - 1));
        self.fill += n;
        if self.fill >= 32 {
            self.fill -= 32;
            out.u32_be((self.acc >> self.fill) as u32);
            self.acc &= (1u64 << self.fill) - 1;
        }
    }

    /// The low `n` bits of `v`, 0 <= n <= 64.
    #[inline(always)]
    pub fn write64(&mut self, out: &mut Out, v: u64, n: u32) {
        if n > 32 {
            self.write(out, v >> 32, n - 32);
            self.write(out, v, 32);
        } else {
            self.write(out, v, n);
        }
    }

    /// The bits left, the last byte padded with zero bits.
    pub fn flush(&mut self, out: &mut Out) {
        while self.fill >= 8 {
            self.fill -= 8;
            out.u8((self.acc >> self.fill) as u8);
        }
        if self.fill > 0 {
            out.u8((self.acc << (8 - self.fill)) as u8);
        }
        self.acc = 0;
        self.fill = 0;
    }
}
