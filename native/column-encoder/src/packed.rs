//! The PACKED column: plan (order, width, exceptions) and body, as packed-int.ts planPacked
//! and encodePacked choose and write them (docs/format.md, "PACKED column").

use super::out::{bit_length, varint_bytes, zigzag, BitOut, Out};

/// Widest packed residual; wider ones are exceptions.
const WIDTH_MAX: u32 = 32;
/// Columns with fewer residuals than this try the full width only (no exceptions).
const SHORT_COLUMN_VALUES: u64 = 16;
/// Order 0 is planned only for columns whose first scaled value is smaller than this.
const ORDER0_FIRST_ABS_MAX: i64 = 1 << 12;
/// Bit lengths of zigzagged residuals go up to 54.
const BITLEN_SLOTS: usize = 56;
/// Order-2 residuals past this cannot be planned (their zigzag must stay exact in JS).
const RESIDUAL_ABS_MAX: i64 = 1 << 51;
const EXCEPTIONS_FLAG: u8 = 0x80;

#[derive(Clone, Copy)]
pub struct Plan {
    pub order: usize,
    pub width: u32,
    pub exceptions: u64,
    /// PACKED size, kind byte included (exceptions counted as packed-int.ts counts them).
    pub bytes: u64,
}

/// Bit-length histograms of the order-0, 1, 2 residuals and their maxima.
struct Histograms {
    h: [[u32; BITLEN_SLOTS]; 3],
    max: [u32; 3],
    order2_ok: bool,
}

fn histograms(sc: &[i64], try_order0: bool) -> Histograms {
    let mut hs = Histograms { h: [[0; BITLEN_SLOTS]; 3], max: [0; 3], order2_ok: true };
    let mut prev = 0i64;
    let mut prev_delta = 0i64;
    for (i, &s) in sc.iter().enumerate() {
        if try_order0 {
            let b = bit_length(zigzag(s));
            hs.h[0][b as usize] += 1;
            hs.max[0] = hs.max[0].max(b);
        }
        let d = s - prev;
        if i >= 1 {
            let b = bit_length(zigzag(d));
            hs.h[1][b as usize] += 1;
            hs.max[1] = hs.max[1].max(b);
        }
        if i >= 2 && hs.order2_ok {
            let r = d - prev_delta;
            if r.abs() > RESIDUAL_ABS_MAX {
                hs.order2_ok = false;
            } else {
                let b = bit_length(zigzag(r));
                hs.h[2][b as usize] += 1;
                hs.max[2] = hs.max[2].max(b);
            }
        }
        prev = s;
        prev_delta = d;
    }
    hs
}

/// planPacked for n >= 3 scaled values. (planShort, its shortcut for short columns of small
/// values, gives the same plan as the general path, which is all this does.)
pub fn plan_packed(sc: &[i64]) -> Plan {
    let n = sc.len();
    if n < SHORT_COLUMN_VALUES as usize {
        return plan_short(sc);
    }
    plan_general(sc)
}

/// The general path of plan_packed: bit-length histograms, every width tried.
fn plan_general(sc: &[i64]) -> Plan {
    let n = sc.len();
    let try_order0 = sc[0].abs() < ORDER0_FIRST_ABS_MAX;
    let hs = histograms(sc, try_order0);
    let mut plan = Plan { order: 0, width: 0, exceptions: 0, bytes: u64::MAX };
    let first = if try_order0 { 0 } else { 1 };
    for order in first..=2usize {
        if order == 2 && !hs.order2_ok {
            break;
        }
        let head = head_bytes(sc, order);
        plan_width(&hs.h[order], hs.max[order], (n - order) as u64, head, order, &mut plan);
    }
    plan
}

/// A PACKED body's bytes before its residuals, kind byte included: the kind and width bytes
/// and the first values the order keeps (s0; s1 - s0 for order 2).
fn head_bytes(sc: &[i64], order: usize) -> u64 {
    let mut head = 2u64;
    if order >= 1 {
        head += varint_bytes(zigzag(sc[0]));
    }
    if order == 2 {
        head += varint_bytes(zigzag(sc[1] - sc[0]));
    }
    head
}

/// The bitwise ors of a column's zigzagged residuals of each order: the longest bit length
/// of a set of residuals is that of their or. Order-2 residuals past RESIDUAL_ABS_MAX make
/// order 2 unplannable.
pub struct Ors {
    or: [u64; 3],
    order2_ok: bool,
}

/// The Ors of sc (at least 3 values), in one loop without a branch a value (the longest
/// order-2 residual checked after it).
#[inline(always)]
pub fn ors_of(sc: &[i64]) -> Ors {
    let (s0, s1) = (sc[0], sc[1]);
    let mut or = [zigzag(s0) | zigzag(s1), zigzag(s1 - s0), 0];
    let mut r_abs_max = 0u64;
    let (mut prev, mut prev_delta) = (s1, s1 - s0);
    for &s in &sc[2..] {
        let d = s - prev;
        let r = d - prev_delta;
        or[0] |= zigzag(s);
        or[1] |= zigzag(d);
        or[2] |= zigzag(r);
        r_abs_max = r_abs_max.max(r.unsigned_abs());
        prev = s;
        prev_delta = d;
    }
    Ors { or, order2_ok: r_abs_max <= RESIDUAL_ABS_MAX as u64 }
}

/// plan_packed for fewer than SHORT_COLUMN_VALUES values: every order has fewer residuals
/// than that, so each tries its full width only (plan_width stops at its first width), and
/// all a plan needs of its residuals is their longest bit length (Ors); a column with a
/// residual past WIDTH_MAX bits (exceptions) takes the general path. No histograms, whose
/// 672 bytes were zeroed a column: with 32 768-update blocks most of a mixed block's columns
/// hold 3 or 4 values. The same plan as plan_general (test below).
fn plan_short(sc: &[i64]) -> Plan {
    plan_from_ors(sc, &ors_of(sc))
}

/// plan_short's plan of the 3 to SHORT_COLUMN_VALUES - 1 values sc from their Ors.
#[inline(always)]
pub fn plan_from_ors(sc: &[i64], ors: &Ors) -> Plan {
    let n = sc.len();
    debug_assert!(n >= 3 && n < SHORT_COLUMN_VALUES as usize);
    let try_order0 = sc[0].abs() < ORDER0_FIRST_ABS_MAX;
    let mut or = ors.or;
    if !try_order0 {
        or[0] = 0;
    }
    if !ors.order2_ok {
        or[2] = 0;
    }
    // A residual past WIDTH_MAX bits would be an exception: the general path counts them.
    if (or[0] | or[1] | or[2]) >> WIDTH_MAX != 0 {
        return plan_general(sc);
    }
    // Each order's size (heads as head_bytes), the smallest taken, ties to the lower order
    // (plan_general replaces a plan only by a strictly smaller one): selects, not branches,
    // which mispredicted on the sizes of columns this short.
    let w = [bit_length(or[0]), bit_length(or[1]), bit_length(or[2])];
    let n = n as u64;
    let v0 = varint_bytes(zigzag(sc[0]));
    let v1 = varint_bytes(zigzag(sc[1] - sc[0]));
    // An order not planned is all ones (u64::MAX) by a mask, not a branch: whether the first
    // value is under ORDER0_FIRST_ABS_MAX is the data's whim.
    let b0 = (2 + (n * w[0] as u64 + 7) / 8) | (!try_order0 as u64).wrapping_neg();
    let b1 = 2 + v0 + ((n - 1) * w[1] as u64 + 7) / 8;
    let b2 = (2 + v0 + v1 + ((n - 2) * w[2] as u64 + 7) / 8) | (!ors.order2_ok as u64).wrapping_neg();
    let (mut order, mut bytes) = (0usize, b0);
    if b1 < bytes {
        (order, bytes) = (1, b1);
    }
    if b2 < bytes {
        (order, bytes) = (2, b2);
    }
    Plan { order, width: w[order], exceptions: 0, bytes }
}

/// planWidth: every width from the widest residual's down, exceptions as running sums; a
/// strictly smaller size replaces the plan.
fn plan_width(h: &[u32; BITLEN_SLOTS], max_len: u32, m: u64, head: u64, order: usize, plan: &mut Plan) {
    let mut count = 0u64;
    let mut len_sum = 0u64;
    let mut len = max_len;
    while len > WIDTH_MAX {
        count += h[len as usize] as u64;
        len_sum += h[len as usize] as u64 * len as u64;
        len -= 1;
    }
    let top = max_len.min(WIDTH_MAX);
    let min_width = if m < SHORT_COLUMN_VALUES { top } else { 0 };
    let mut width = top;
    loop {
        let w = width as u64;
        let x = len_sum - w * count + 3 * count;
        let exception_bytes = if count == 0 { 0 } else { 1 + count + (x + 6) / 7 };
        // Exception bytes only grow as the width goes down (more residuals are exceptions,
        // each with more high bits): once they alone reach the best size, no narrower
        // width can be strictly smaller, and only a strictly smaller size replaces a plan.
        if head + exception_bytes >= plan.bytes {
            break;
        }
        let bytes = head + (m * w + 7) / 8 + exception_bytes;
        if bytes < plan.bytes {
            *plan = Plan { order, width, exceptions: count, bytes };
        }
        count += h[width as usize] as u64;
        len_sum += h[width as usize] as u64 * w;
        if width == min_width {
            break;
        }
        width -= 1;
    }
}

/// The order-`order` zigzagged residuals of sc, one loop per order (no branch a value).
#[inline(always)]
fn for_each_residual(sc: &[i64], order: usize, mut f: impl FnMut(usize, u64)) {
    match order {
        0 => sc.iter().enumerate().for_each(|(j, &s)| f(j, zigzag(s))),
        1 => sc.windows(2).enumerate().for_each(|(j, w)| f(j, zigzag(w[1] - w[0]))),
        _ => sc.windows(3).enumerate().for_each(|(j, w)| f(j, zigzag(w[2] - 2 * w[1] + w[0]))),
    }
}

/// encodePacked: the PACKED body (the kind byte carries order and k).
pub fn encode_packed(out: &mut Out, sc: &[i64], plan: &Plan) {
    let order = plan.order;
    let width = plan.width;
    if order >= 1 {
        out.svar(sc[0]);
    }
    if order == 2 {
        out.svar(sc[1] - sc[0]);
    }
    let flag = if plan.exceptions > 0 { EXCEPTIONS_FLAG } else { 0 };
    out.u8(width as u8 | flag);
    if plan.exceptions > 0 {
        out.uvar(plan.exceptions);
    }
    let mask = (1u64 << width) - 1;
    let mut bits = BitOut::new();
    for_each_residual(sc, order, |_, z| bits.write(out, z & mask, width));
    bits.flush(out);
    if plan.exceptions == 0 {
        return;
    }
    let mut prev: i64 = -1;
    for_each_residual(sc, order, |j, z| {
        if z >> width != 0 {
            out.uvar((j as i64 - prev - 1) as u64);
            out.uvar(z >> width);
            prev = j as i64;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_rng::Rng;

    #[test]
    fn plan_short_is_plan_general() {
        let mut r = Rng(0x9e37_79b9_7f4a_7c15);
        let limit = 1i64 << 51;
        for t in 0..400_000u64 {
            let n = 3 + (r.next() % 13) as usize;
            // Values of every scale: small, counters, near the scaled limit, with spikes.
            let bits = [2u32, 8, 13, 20, 33, 40, 51][(t % 7) as usize];
            let mut v = (r.next() % (1u64 << bits)) as i64 - (1i64 << (bits - 1));
            let mut sc = Vec::with_capacity(n);
            for _ in 0..n {
                let step = (r.next() % 64) as i64 - 32 + if r.next() % 9 == 0 { (r.next() % (1u64 << 45)) as i64 - (1i64 << 44) } else { 0 };
                v = (v + step).clamp(-limit, limit);
                sc.push(if r.next() % 11 == 0 { (r.next() % 4000) as i64 - 2000 } else { v });
            }
            let (a, b) = (plan_short(&sc), plan_general(&sc));
            assert_eq!((a.order, a.width, a.exceptions, a.bytes), (b.order, b.width, b.exceptions, b.bytes), "{:?}", sc);
        }
    }
}
