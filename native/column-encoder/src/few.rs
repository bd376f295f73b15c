//! Columns of FEW_MIN to FEW_MAX values, byte for byte what lib.rs encode_column writes for
//! them, in about two thirds of its instructions. With 32 768-update blocks most columns of
//! a block over many paths hold 3 or 4 values (the mixed workload of bench/peers: 10 000
//! paths), where encode_column's general path (a gather into scratch, scale_decimal with an
//! exponent search from k = 0, the PACKED plan's residuals, the body) made the encoder
//! about 1.4 times dearer an update than at 16 384 (columns of 1 or 2 values, decimal.rs
//! scale_short). Here each length is code of its own (const N: loops unrolled, arrays in
//! registers, no bounds checks), the column is first tried whole at the previous column's
//! exponent (at_guess), and the residuals' ors come from one loop without a branch a value
//! (packed.rs ors_of). cachegrind on 12 mixed blocks: the column loop's instructions went
//! from 72.3 M to 49.2 M (42.6 M at 16 384 updates a block, for the same updates).

use super::decimal::{exponent_of, scaled_at, scaled_at_guess, Guess};
use super::out::{varint_bytes, zigzag, Out};
use super::packed::{encode_packed, ors_of, plan_from_ors};

/// Shortest column taken here (shorter ones: lib.rs, decimal.rs scale_short).
pub const FEW_MIN: usize = 3;
/// Longest column taken here (each length is code of its own, its loops unrolled).
pub const FEW_MAX: usize = 8;

const KIND_DECIMAL_K: u8 = 0x10;
const KIND_PACKED: u8 = 0x40;

/// The DECIMAL_K size (kind byte included) of a column's scaled values so far, as
/// scale_decimal sums it.
struct Acc {
    dec: u64,
    prev: i64,
}

impl Acc {
    #[inline(always)]
    fn new() -> Self {
        Acc { dec: 1, prev: 0 }
    }

    #[inline(always)]
    fn push(&mut self, s: i64) {
        self.dec += varint_bytes(zigzag(s - self.prev));
        self.prev = s;
    }
}

/// The body of the column of `vals[idx[..]]` (FEW_MIN <= idx.len() <= FEW_MAX, every index
/// checked by the caller) and its kind byte, when the column is decimal; None, and nothing
/// written, when it is not (the caller encodes it by encode_column, whose scale_decimal
/// finds the same: exponent_of's answers do not depend on the guess, only its speed).
#[inline(always)]
pub fn encode_few(out: &mut Out, vals: &[u64], idx: &[u32], guess: &mut Guess) -> Option<u8> {
    match idx.len() {
        3 => encode_n::<3>(out, vals, idx, guess),
        4 => encode_n::<4>(out, vals, idx, guess),
        5 => encode_n::<5>(out, vals, idx, guess),
        6 => encode_n::<6>(out, vals, idx, guess),
        7 => encode_n::<7>(out, vals, idx, guess),
        _ => encode_n::<8>(out, vals, idx, guess),
    }
}

/// encode_few of a column of N values (idx.len() == N).
#[inline(always)]
fn encode_n<const N: usize>(out: &mut Out, vals: &[u64], idx: &[u32], guess: &mut Guess) -> Option<u8> {
    debug_assert!(idx.len() == N);
    // SAFETY: the caller checked every index against vals.len(), and idx holds N of them.
    let value = |i: usize| f64::from_bits(unsafe { *vals.get_unchecked(*idx.get_unchecked(i) as usize) });
    let mut sc = [0i64; N];
    let (k, dec) = match at_guess(&value, guess.k, &mut sc) {
        Some(dec) => (guess.k, dec),
        None => by_value(&value, guess, &mut sc)?,
    };
    let plan = plan_from_ors(&sc, &ors_of(&sc));
    if plan.bytes < dec {
        encode_packed(out, &sc, &plan);
        return Some(KIND_PACKED + 16 * plan.order as u8 + k as u8);
    }
    let mut prev = 0i64;
    for s in sc {
        out.svar(s - prev);
        prev = s;
    }
    Some(KIND_DECIMAL_K + k as u8)
}

/// The column scaled at the guess's exponent gk, when that is its exponent: every value
/// exact there within 2^50, and one of them not a multiple of 10 (so exact at no smaller
/// exponent: exponent_of's test). Each value's own smallest exponent is then at most gk (a
/// value exact at e within these bounds is exact at every exponent from e to 9), and
/// scale_decimal's, the largest of them, is gk: the same k and scaled values. Its DECIMAL_K
/// size, or None (then by_value). Saves each column's exponent_of of its first value.
#[inline(always)]
fn at_guess<const N: usize>(value: &impl Fn(usize) -> f64, gk: usize, sc: &mut [i64; N]) -> Option<u64> {
    // A column of integers starts at k = 0 in by_value, its fast case.
    let v0 = value(0);
    if gk == 0 || v0.floor() == v0 {
        return None;
    }
    let mut acc = Acc::new();
    let mut lowest = false;
    for (i, slot) in sc.iter_mut().enumerate() {
        let s = scaled_at_guess(value(i), gk)?;
        *slot = s;
        acc.push(s);
        lowest |= s % 10 != 0;
    }
    if lowest {
        Some(acc.dec)
    } else {
        None
    }
}

/// scale_decimal value by value: (k, DECIMAL_K size), or None when the column is not decimal.
#[inline(always)]
fn by_value<const N: usize>(value: &impl Fn(usize) -> f64, guess: &mut Guess, sc: &mut [i64; N]) -> Option<(usize, u64)> {
    let mut k = 0usize;
    let mut acc = Acc::new();
    let mut i = 0;
    while i < N {
        let x = value(i);
        if let Some(s) = scaled_at(x, k) {
            sc[i] = s;
            acc.push(s);
            i += 1;
            continue;
        }
        // A value exact only at a larger exponent rescales the ones before.
        let (e, r) = exponent_of(x, guess)?;
        if e <= k {
            return None;
        }
        k = e;
        if i == 0 {
            sc[0] = r as i64;
        } else {
            for j in 0..=i {
                sc[j] = scaled_at(value(j), k)?;
            }
        }
        acc = Acc::new();
        for &s in &sc[..=i] {
            acc.push(s);
        }
        i += 1;
    }
    Some((k, acc.dec))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_rng::Rng;

    /// A value of one of the shapes a column meets: decimals of 0 to 9 places, integers,
    /// values near the scaled limit, not decimal at all, NaN, ±Inf, -0.
    fn value(r: &mut Rng, shape: u64) -> f64 {
        let places = [0i32, 1, 2, 2, 3, 5, 9][r.below(7) as usize];
        match shape {
            0 => (r.below(200_000) as f64 - 100_000.0) / 100.0,
            1 => (r.below(1 << 40) as f64) / 10f64.powi(places),
            2 => 2251799813685248.0 / 10f64.powi(places) - r.below(3) as f64,
            3 => [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, 0.1 + 0.2, std::f64::consts::PI][r.below(6) as usize],
            4 => (r.below(4000) as f64 - 2000.0) * 2f64.powi(-(r.below(4) as i32)),
            _ => (r.next() >> 11) as f64 * if r.below(2) == 0 { 1.0 } else { 1e-3 },
        }
    }

    #[test]
    fn at_guess_takes_a_column_only_at_its_own_exponent() {
        let at = |vals: [f64; 3], gk: usize| {
            let mut sc = [0i64; 3];
            at_guess(&|i: usize| vals[i], gk, &mut sc).map(|dec| (dec, sc))
        };
        assert_eq!(at([1.25, 3.5, 7.01], 2), Some((1 + 2 + 2 + 2, [125, 350, 701])));
        // Every value exact at 2 places but none needs them: the column's exponent is 1.
        assert_eq!(at([1.5, 2.5, 3.0], 2), None);
        assert!(at([1.5, 2.5, 3.0], 1).is_some());
        // A value that needs a larger exponent, an integer first value, no guess yet.
        assert_eq!(at([1.5, 2.25, 3.0], 1), None);
        assert_eq!(at([2.0, 2.5, 3.5], 1), None);
        assert_eq!(at([1.5, 2.5, 3.5], 0), None);
    }

    #[test]
    fn encode_few_is_encode_column() {
        let mut r = Rng(0x2545_f491_4f6c_dd1d);
        let mut a = Out::new();
        let mut b = Out::new();
        let (mut ga, mut gb) = (Guess { k: 0 }, Guess { k: 0 });
        let mut decimal = 0;
        for t in 0..300_000u64 {
            let n = FEW_MIN + r.below((FEW_MAX - FEW_MIN + 1) as u64) as usize;
            // Most columns of one shape (as a path's values are), some mixed.
            let shape = r.below(6);
            let mixed = t % 5 == 0;
            let vals: Vec<u64> = (0..n)
                .map(|_| {
                    let sh = if mixed { r.below(6) } else { shape };
                    value(&mut r, sh).to_bits()
                })
                .collect();
            // The column's values scattered in a larger array, as a block's are.
            let mut all = vec![0u64; 2 * n];
            let idx: Vec<u32> = (0..n as u32).map(|i| 2 * (n as u32 - 1 - i) + (t % 2) as u32).collect();
            for (i, &x) in idx.iter().zip(&vals) {
                all[*i as usize] = x;
            }
            a.reserve(64 * n + 64);
            b.reserve(64 * n + 64);
            let mut scaled = vec![0i64; n];
            let want = crate::encode_column(&mut b, &vals, &mut scaled, &mut gb);
            match encode_few(&mut a, &all, &idx, &mut ga) {
                Some(kind) => {
                    decimal += 1;
                    assert_eq!((kind, a.bytes(a.pos)), (want, b.bytes(b.pos)), "{:?}", vals.iter().map(|&x| f64::from_bits(x)).collect::<Vec<_>>());
                }
                None => {
                    assert_eq!(a.pos, 0, "nothing written");
                    assert!(want & 0xf0 != KIND_DECIMAL_K && want & 0xc0 != KIND_PACKED, "{:?} is decimal", vals.iter().map(|&x| f64::from_bits(x)).collect::<Vec<_>>());
                }
            }
        }
        assert!(decimal > 60_000, "{decimal} decimal columns of 300 000");
    }
}
