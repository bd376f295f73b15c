//! Whether a column is decimal, at which exponent, and its scaled integers: columns.ts
//! decimalExponent and scaleDecimal, to the bit (JS Math.round, `===` on doubles).

pub const DECIMAL_EXPONENT_MAX: usize = 9;
const POW10: [f64; DECIMAL_EXPONENT_MAX + 1] = [1.0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];
/// Scaled integers stay within 2^51 so that their deltas stay exact within 2^52.
const SCALED_ABS_MAX: f64 = 2251799813685248.0;
/// decimalExponent tries these exponents before its k = 9 rejection test.
const FEW_DECIMALS: usize = 3;
/// Below this, a value exact at some k <= 9 also round-trips at k = 9 (columns.ts).
const FAST_REJECT_ABS_LIMIT: f64 = 2e6;

/// JS Math.round: the nearest integer, ties towards +Inf. x - floor(x) is exact for every
/// double but x in (-0.5, 0) (where the sum only decides >= 0.5 the same way); the sign
/// of a zero result may differ from JS there, which no caller can see: such an s is never
/// exact (s / 10^k is 0, v is not).
#[inline]
pub fn js_round(x: f64) -> f64 {
    let f = x.floor();
    if x - f >= 0.5 {
        f + 1.0
    } else {
        f
    }
}

/// round(x) for an exactness test s / 10^k == v: the nearest integer, ties to even (one
/// instruction, no branch on x's fraction, which mispredicts on scaled values a hair above
/// or below their integer) where |s| < 2^50; JS Math.round beyond. Both agree but on ties
/// (x = m + 0.5), and below 2^50 no tie is exact: an exact s is within s x 2^-52 < 1/4 of
/// x. A non-exact s is never used, only an exact one.
#[inline(always)]
fn round_scaled(x: f64) -> f64 {
    let r = x.round_ties_even();
    if r.abs() < GUESS_SCALED_ABS_LIMIT {
        r
    } else {
        js_round(x)
    }
}

/// Within SCALED_ABS_MAX and not -0 (nor NaN, ±Inf).
#[inline]
fn holdable(s: f64) -> bool {
    s.abs() <= SCALED_ABS_MAX && !(s == 0.0 && s.is_sign_negative())
}

/// The smallest k <= 9 at which v round-trips, with its scaled value, as decimalExponent.
fn decimal_exponent(v: f64) -> Option<(usize, f64)> {
    if v.is_finite() && v.floor() == v {
        return if holdable(v) { Some((0, v)) } else { None };
    }
    if !v.is_finite() {
        return None;
    }
    for k in 1..=FEW_DECIMALS {
        let p = POW10[k];
        let r = js_round(v * p);
        if r / p == v {
            return found(r, k);
        }
    }
    if v.abs() < FAST_REJECT_ABS_LIMIT {
        let p9 = POW10[DECIMAL_EXPONENT_MAX];
        if js_round(v * p9) / p9 != v {
            return None;
        }
    }
    for k in FEW_DECIMALS + 1..=DECIMAL_EXPONENT_MAX {
        let p = POW10[k];
        let r = js_round(v * p);
        if r / p == v {
            return found(r, k);
        }
    }
    None
}

#[inline]
fn found(r: f64, k: usize) -> Option<(usize, f64)> {
    if r.abs() <= SCALED_ABS_MAX {
        Some((k, r))
    } else {
        None
    }
}

/// Scaled values below this (and their exponent's guess) decide the smallest exponent alone.
const GUESS_SCALED_ABS_LIMIT: f64 = 1125899906842624.0; // 2^50

/// The exponent decimal_exponent found last: the first one tried for the next value.
pub struct Guess {
    pub k: usize,
}

/// decimal_exponent(v) with the guess tried first (columns.ts guessExponent): r = round(v x
/// 10^k) exact, |r| < 2^50 and not a multiple of 10 is v's smallest exact exponent (were v
/// exact at some j < k, v x 10^k would be within 0.3 of r_j x 10^(k - j), a multiple of 10).
#[inline(always)]
pub fn exponent_of(v: f64, guess: &mut Guess) -> Option<(usize, f64)> {
    let gk = guess.k;
    if gk > 0 {
        // (-0, which scaled_at_guess refuses, is a multiple of 10 with no descent: it went
        // to decimal_exponent either way.)
        if let Some(ri) = scaled_at_guess(v, gk) {
            if ri % 10 != 0 {
                return Some((gk, ri as f64));
            }
            // A multiple of 10: exact one place lower (r / 10 at gk - 1, exact), the
            // answer when r / 10 is not a multiple of 10 in turn (columns.ts guessExponent's
            // descent; the guess itself stays).
            if gk >= 2 && (ri / 10) % 10 != 0 {
                let m = (ri / 10) as f64;
                if m / POW10[gk - 1] == v {
                    return Some((gk - 1, m));
                }
            }
        }
    }
    let found = decimal_exponent(v);
    if let Some((k, _)) = found {
        if k > 0 {
            guess.k = k;
        }
    }
    found
}

/// zigzag varint length of a scaled delta (|d| <= 2^52).
#[inline]
fn delta_bytes(d: i64) -> u64 {
    super::out::varint_bytes(super::out::zigzag(d))
}

/// Rescales nums[0, n) at k into `scaled`; the DECIMAL_K size (kind byte included) or None.
fn rescale(bits: &[u64], scaled: &mut [i64], n: usize, k: usize) -> Option<u64> {
    let p = POW10[k];
    let mut bytes = 1;
    let mut prev = 0i64;
    for i in 0..n {
        let v = f64::from_bits(bits[i]);
        let s = round_scaled(v * p);
        if s / p != v || !holdable(s) {
            return None;
        }
        let si = s as i64;
        scaled[i] = si;
        bytes += delta_bytes(si - prev);
        prev = si;
    }
    Some(bytes)
}

/// scaleDecimal: nums[0, n) scaled into `scaled` at the smallest exponent that keeps every
/// value exact; (DECIMAL_K size with its kind byte, k), or None when not decimal. A value
/// that needs a larger exponent than the column's so far rescales the values before it;
/// one whose own exponent is not larger makes the column not decimal.
pub fn scale_decimal(bits: &[u64], scaled: &mut [i64], guess: &mut Guess) -> Option<(u64, usize)> {
    let n = bits.len();
    let mut k = 0usize;
    let mut p = 1.0f64;
    let mut dec = 1u64;
    let mut prev = 0i64;
    let mut i = 0;
    while i < n {
        let v = f64::from_bits(bits[i]);
        let s;
        let exact;
        if k == 0 {
            s = v.floor();
            exact = s == v && holdable(s);
        } else {
            s = round_scaled(v * p);
            exact = s / p == v && holdable(s);
        }
        if !exact {
            let (e, r) = exponent_of(v, guess)?;
            if e <= k {
                return None;
            }
            k = e;
            p = POW10[k];
            if i == 0 {
                // rescale would scale v at k again: r, holdable (a scaled -0 is exact only
                // for v = -0, an integer).
                scaled[0] = r as i64;
                dec = 1 + delta_bytes(r as i64);
            } else {
                dec = rescale(bits, scaled, i + 1, k)?;
            }
            prev = scaled[i];
            i += 1;
            continue;
        }
        let si = s as i64;
        scaled[i] = si;
        dec += delta_bytes(si - prev);
        prev = si;
        i += 1;
    }
    Some((dec, k))
}

/// The value at exponent k when it is exact and holdable there (scale_decimal's test).
#[inline(always)]
pub fn scaled_at(v: f64, k: usize) -> Option<i64> {
    let s = if k == 0 { v.floor() } else { round_scaled(v * POW10[k]) };
    let exact = if k == 0 { s == v } else { s / POW10[k] == v };
    if exact && holdable(s) {
        Some(s as i64)
    } else {
        None
    }
}

/// The value at exponent k > 0 when it is exact there with |scaled| < 2^50 (and not -0):
/// exponent_of's guess test, for a whole column tried at the guess (few.rs).
#[inline(always)]
pub fn scaled_at_guess(v: f64, k: usize) -> Option<i64> {
    let p = POW10[k];
    let s = (v * p).round_ties_even();
    if s / p == v && s.abs() < GUESS_SCALED_ABS_LIMIT && !(s == 0.0 && s.is_sign_negative()) {
        Some(s as i64)
    } else {
        None
    }
}

/// scale_decimal of a column of one value (v1 None) or two, without the column's copies
/// (a block over many paths holds thousands of such columns): (k, s0, s1), or None when
/// the column is not decimal.
#[inline(always)]
pub fn scale_short(v0: f64, v1: Option<f64>, guess: &mut Guess) -> Option<(usize, i64, i64)> {
    let (mut k, mut s0) = match scaled_at(v0, 0) {
        Some(s) => (0, s),
        None => {
            let (e, r) = exponent_of(v0, guess)?;
            if e == 0 {
                return None;
            }
            (e, r as i64)
        }
    };
    let Some(v1) = v1 else { return Some((k, s0, 0)) };
    if let Some(s1) = scaled_at(v1, k) {
        return Some((k, s0, s1));
    }
    let (e, _) = exponent_of(v1, guess)?;
    if e <= k {
        return None;
    }
    k = e;
    s0 = scaled_at(v0, k)?;
    let s1 = scaled_at(v1, k)?;
    Some((k, s0, s1))
}
