//! The XOR column (Gorilla) and its size, as xor-float.ts xorColumnBits / encodeXorColumn
//! (docs/format.md, "XOR column"). Works on the values' bit patterns: every NaN payload,
//! -0 and subnormal is kept.

use super::out::{BitOut, Out};

/// The size in bits of the XOR coding of `bits` (one value or more).
pub fn xor_column_bits(bits: &[u64]) -> u64 {
    let mut total = 64u64;
    let mut prev = bits[0];
    let mut prev_lead: i32 = -1;
    let mut prev_trail: i32 = 0;
    for &x in &bits[1..] {
        let p = x ^ prev;
        if p == 0 {
            total += 1;
        } else {
            let lead = p.leading_zeros() as i32;
            let trail = p.trailing_zeros() as i32;
            if prev_lead >= 0 && lead >= prev_lead && trail >= prev_trail {
                total += (2 + 64 - prev_lead - prev_trail) as u64;
            } else {
                total += (2 + 12 + 64 - lead - trail) as u64;
                prev_lead = lead;
                prev_trail = trail;
            }
        }
        prev = x;
    }
    total
}

/// The XOR body: `uvar byteLength` (known from xor_column_bits), then the bits.
pub fn encode_xor(out: &mut Out, bits: &[u64], byte_length: u64) {
    out.uvar(byte_length);
    let mut bw = BitOut::new();
    let mut prev = bits[0];
    bw.write64(out, prev, 64);
    let mut prev_lead: u32 = 0;
    let mut prev_trail: u32 = 0;
    let mut window = false;
    for &x in &bits[1..] {
        let p = x ^ prev;
        if p == 0 {
            bw.write(out, 0, 1);
        } else {
            let lead = p.leading_zeros();
            let trail = p.trailing_zeros();
            if window && lead >= prev_lead && trail >= prev_trail {
                bw.write(out, 0b10, 2);
                bw.write64(out, p >> prev_trail, 64 - prev_lead - prev_trail);
            } else {
                let len = 64 - lead - trail;
                bw.write(out, 0b11, 2);
                bw.write(out, lead as u64, 6);
                bw.write(out, (len - 1) as u64, 6);
                bw.write64(out, p >> trail, len);
                prev_lead = lead;
                prev_trail = trail;
                window = true;
            }
        }
        prev = x;
    }
    bw.flush(out);
}
