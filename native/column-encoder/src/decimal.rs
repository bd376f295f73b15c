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

/// zigzag varint length of a scaled delta (|d| <= 2^52).
#[inline]
fn delta_bytes(d: i64) -> u64 {
    crate::out::varint_bytes(crate::out::zigzag(d))
}

/// Rescales nums[0, n) at k into `scaled`; the DECIMAL_K size (kind byte included) or None.
fn rescale(nums: &[f64], scaled: &mut [i64], n: usize, k: usize) -> Option<u64> {
    let p = POW10[k];
    let mut bytes = 1;
    let mut prev = 0i64;
    for i in 0..n {
        let v = nums[i];
        let s = js_round(v * p);
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
pub fn scale_decimal(nums: &[f64], scaled: &mut [i64], n: usize) -> Option<(u64, usize)> {
    let mut k = 0usize;
    let mut p = 1.0f64;
    let mut dec = 1u64;
    let mut prev = 0i64;
    let mut i = 0;
    while i < n {
        let v = nums[i];
        let s;
        let exact;
        if k == 0 {
            s = v.floor();
            exact = s == v && holdable(s);
        } else {
            s = js_round(v * p);
            exact = s / p == v && holdable(s);
        }
        if !exact {
            let (e, _) = decimal_exponent(v)?;
            if e <= k {
                return None;
            }
            k = e;
            p = POW10[k];
            dec = rescale(nums, scaled, i + 1, k)?;
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
